// ggml's tensor encodings as they lie in GGUF files ("source types"), their block layouts, the
// decoders to f32 and the two block encoders `llama-cuda quantize` writes. Layouts (all blocks
// packed, little-endian; shared/notes/gguf-formats.md §5, ggml-common.h):
//
//   type  elems bytes  fields (in byte order)                       value of weight j
//   Q4_0   32    18   f16 d, u8 qs[16]                             (nib_j - 8)·d
//   Q4_1   32    20   f16 d, f16 m, u8 qs[16]                      nib_j·d + m
//   Q5_0   32    22   f16 d, u32 qh, u8 qs[16]                     ((nib_j | hbit_j<<4) - 16)·d
//   Q5_1   32    24   f16 d, f16 m, u32 qh, u8 qs[16]              (nib_j | hbit_j<<4)·d + m
//   Q8_0   32    34   f16 d, i8 qs[32]                             qs_j·d
//   Q4_K  256   144   f16 d, f16 dmin, u8 scales[12], u8 qs[128]   (d·sc_k)·nib - (dmin·m_k), k = j/32
//   Q5_K  256   176   f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]
//                                                                  (d·sc_k)·(nib + 16·hbit) - (dmin·m_k)
//   Q6_K  256   210   u8 ql[128], u8 qh[64], i8 scales[16], f16 d  (d·sc_s)·(q6 - 32), s = j/16
//   Q8_K  256   292   f32 d, i8 qs[256], i16 bsums[16]             d·qs_j
//   NF4    64    36   f32 absmax, u8 qs[32]                        kNf4Values[nib_j]·absmax
//
// NF4 is not a ggml type: it is bitsandbytes' 4-bit NormalFloat as lib/formats/bnb-nf4.ts
// hands it over (absmax already decoded from double quantization; qs in bitsandbytes' order,
// byte i = weight 2i in the high nibble, weight 2i+1 in the low one; see core/nf4.h).
//
// 32-blocks: byte qs[i] holds weight i in its low nibble and weight i+16 in its high nibble;
// Q5 bit j of qh is the fifth bit of weight j. K-quants: see the decoders for the orders.
// Every decoder computes in float32 in ggml's order of operations (products first, then the
// subtraction, no fused multiply-add), so its output equals ggml's dequantize_row_* bit for bit.
#pragma once

#include <cstdint>
#include <string>

namespace lc {

// Source encodings the loader reads (GGUF ggml types; safetensors/llama2.c give f32/f16/bf16).
enum class SrcType : int32_t { F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, Q8_K, NF4 };

constexpr SrcType kAllSrcTypes[] = {SrcType::F32,  SrcType::F16,  SrcType::BF16, SrcType::Q8_0,
                                    SrcType::Q4_0, SrcType::Q4_1, SrcType::Q5_0, SrcType::Q5_1,
                                    SrcType::Q4_K, SrcType::Q5_K, SrcType::Q6_K, SrcType::Q8_K,
                                    SrcType::NF4};

struct BlockLayout {
  int64_t elems;  // weights per block
  int64_t bytes;  // bytes per block
};

BlockLayout src_layout(SrcType t);
const char* src_type_name(SrcType t);  // "q4_k": the lowercase GGUF names lib/ uses
bool src_type_from_name(const std::string& name, SrcType* out);

// y[0 .. nblocks·elems) = the values of nblocks blocks of type t at x.
void dequantize_blocks(float* y, const uint8_t* x, SrcType t, int64_t nblocks);

// Sub-block k (0..7) of a Q4_K / Q5_K super-block: its 6-bit scale and 6-bit minimum.
void k_scale_min(const uint8_t* scales12, int k, uint8_t* sc, uint8_t* m);

// ggml's reference quantizers (quantize_row_q8_0_ref / quantize_row_q4_0_ref), n a multiple of 32:
//   Q8_0: d = absmax/127, id = 1/d (f32), q = roundf(x·id) (ties away from zero); d stored as f16.
//   Q4_0: max = the value of largest magnitude (first on ties, sign kept), d = max/-8, id = 1/d,
//         q = min(15, trunc(x·id + 8.5)); d stored as f16.
void quantize_q8_0_blocks(uint8_t* y, const float* x, int64_t n);
void quantize_q4_0_blocks(uint8_t* y, const float* x, int64_t n);

}  // namespace lc
