// quantizeRows(src: Uint8Array, srcType, dstType) -> Uint8Array
//
//   src      whole blocks of a GGUF source type (core/ggml_blocks.h): f32, f16, bf16, q8_0, q4_0,
//            q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, q8_k
//   dstType  'q8_0' | 'q4_0' (ggml's reference quantizers, byte for byte), 'f16' (round to
//            nearest even) or 'f32' (the decoded values: ggml's dequantization, bit for bit)
//
// The values are a flat run (rows do not matter to 32-blocks as long as every row is whole
// blocks, which the caller checks); for q8_0/q4_0 their count must be a multiple of 32.
#include "quantize_binding.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "args.h"
#include "core/ggml_blocks.h"
#include "core/half.h"

namespace lc::binding {

namespace {

enum class DstType { Q8_0, Q4_0, F16, F32 };

bool dst_from_name(const std::string& s, DstType* out) {
  if (s == "q8_0") *out = DstType::Q8_0;
  else if (s == "q4_0") *out = DstType::Q4_0;
  else if (s == "f16") *out = DstType::F16;
  else if (s == "f32") *out = DstType::F32;
  else return false;
  return true;
}

// Output bytes for n values.
size_t dst_bytes(DstType t, size_t n) {
  switch (t) {
    case DstType::Q8_0: return n / 32 * 34;
    case DstType::Q4_0: return n / 32 * 18;
    case DstType::F16: return n * 2;
    case DstType::F32: return n * 4;
  }
  return 0;
}

void encode(uint8_t* y, const float* x, size_t n, DstType t) {
  switch (t) {
    case DstType::Q8_0: quantize_q8_0_blocks(y, x, int64_t(n)); break;
    case DstType::Q4_0: quantize_q4_0_blocks(y, x, int64_t(n)); break;
    case DstType::F16:
      for (size_t i = 0; i < n; i++) {
        const uint16_t h = f32_to_f16(x[i]);
        std::memcpy(y + 2 * i, &h, 2);
      }
      break;
    case DstType::F32: std::memcpy(y, x, n * 4); break;
  }
}

}  // namespace

Napi::Value JS_quantizeRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto src = get_typed<uint8_t>(env, info[0], napi_uint8_array, "quantizeRows(src): src");
  if (!info[1].IsString() || !info[2].IsString()) throw_invalid(env, "quantizeRows(src, srcType, dstType): types must be strings");
  const std::string src_name = info[1].As<Napi::String>().Utf8Value();
  const std::string dst_name = info[2].As<Napi::String>().Utf8Value();
  SrcType st;
  DstType dt;
  if (!src_type_from_name(src_name, &st)) throw make_error(env, Code::Unsupported, "quantizeRows: unsupported source type \"" + src_name + "\"");
  if (!dst_from_name(dst_name, &dt)) throw make_error(env, Code::Unsupported, "quantizeRows: unsupported target type \"" + dst_name + "\" (q8_0, q4_0, f16, f32)");
  const BlockLayout layout = src_layout(st);
  const size_t nbytes = src.ByteLength();
  if (nbytes % size_t(layout.bytes) != 0) {
    throw_invalid(env, "quantizeRows: " + std::to_string(nbytes) + " bytes is not a whole number of " + src_name + " blocks (" +
                           std::to_string(layout.bytes) + " bytes each)");
  }
  const size_t nblocks = nbytes / size_t(layout.bytes);
  const size_t n = nblocks * size_t(layout.elems);
  if ((dt == DstType::Q8_0 || dt == DstType::Q4_0) && n % 32 != 0) {
    throw_invalid(env, "quantizeRows: " + std::to_string(n) + " values do not fill " + dst_name + " blocks of 32");
  }
  Napi::Uint8Array out = Napi::Uint8Array::New(env, dst_bytes(dt, n));

  // Chunks of whole source blocks and whole 32-blocks (256 is a multiple of both).
  constexpr size_t kChunkValues = 16384;
  const size_t blocks_per_chunk = kChunkValues / size_t(layout.elems);
  std::vector<float> tmp(kChunkValues);
  const uint8_t* s = src.Data();
  uint8_t* d = out.Data();
  for (size_t b0 = 0; b0 < nblocks; b0 += blocks_per_chunk) {
    const size_t nb = std::min(blocks_per_chunk, nblocks - b0);
    const size_t nv = nb * size_t(layout.elems);
    dequantize_blocks(tmp.data(), s + b0 * size_t(layout.bytes), st, int64_t(nb));
    encode(d + dst_bytes(dt, b0 * size_t(layout.elems)), tmp.data(), nv, dt);
  }
  return out;
}

}  // namespace lc::binding
