// Storage types of weights and how a 2-D weight [rows][cols] is laid out in memory.
// A weight row is one output feature: out[j] = dot(row j, x), as in llama2.c and GGUF.
//
//   F32, F16, BF16  row-major, rows * cols elements.
//   Q8_0            "planar" int8: all codes first, int8 [rows][cols]; then the scales,
//                   f16 [rows][cols/32]. w = code * scale. Bit-exact with GGUF Q8_0 blocks
//                   (the same numbers, regrouped so codes are 16-byte aligned).
//   INT4            int4 group-affine, group size G (32..128, dividing cols):
//                   codes u8 [rows][cols/2]; within each group of G weights, byte j holds
//                   weight j in its low nibble and weight j + G/2 in its high nibble (for
//                   G = 32 that is GGUF Q4_0's order); then the parameters, pairs of f16
//                   {scale, min} [rows][cols/G]. w = q * scale + min, q in 0..15.
//                   GGUF Q4_0 is this with G = 32, scale = d, min = -8 d (exact).
//   NF4             QLoRA 4-bit NormalFloat (core/nf4.h), blocks of 64: codes u8 [rows][cols/2]
//                   in the INT4 order with G = 64 (byte j of a block: weight j low nibble,
//                   weight j + 32 high nibble); then f32 absmax scales [rows][cols/64].
//                   w = kNf4Values[q] * scale. The scale array has INT4's size (4 bytes a group).
//
// Both planar layouts keep the codes of a row contiguous, so a kernel streams codes with
// 16-byte loads and reads the small scale array beside them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lc {

enum class DType : int32_t { F32 = 0, F16 = 1, BF16 = 2, Q8_0 = 3, INT4 = 4, NF4 = 5 };

constexpr int64_t kQ8Group = 32;

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::Q8_0: return "q8_0";
    case DType::INT4: return "int4";
    case DType::NF4: return "nf4";
  }
  return "?";
}

inline bool dtype_from_name(const std::string& name, DType* out) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::INT4, DType::NF4}) {
    if (name == dtype_name(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

// Bytes of a [rows][cols] weight of this type; group is used by INT4 only (NF4: always 64).
inline size_t weight_bytes(DType t, int64_t rows, int64_t cols, int64_t group) {
  const size_t n = size_t(rows) * size_t(cols);
  switch (t) {
    case DType::F32: return n * 4;
    case DType::F16:
    case DType::BF16: return n * 2;
    case DType::Q8_0: return n + size_t(rows) * size_t(cols / kQ8Group) * 2;
    case DType::INT4: return n / 2 + size_t(rows) * size_t(cols / group) * 4;
    case DType::NF4: return n / 2 + size_t(rows) * size_t(cols / 64) * 4;
  }
  return 0;
}

}  // namespace lc
