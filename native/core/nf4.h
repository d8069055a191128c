// NF4: QLoRA's 4-bit NormalFloat (Dettmers et al. 2023, "QLoRA: Efficient Finetuning of
// Quantized LLMs", arXiv:2305.14314, section 3 and appendix E). A weight is
// kNf4Values[code] * absmax of its block of 64.
//
// The 16 values are the float32 numbers bitsandbytes uses (its `get_4bit_type("nf4")` in
// bitsandbytes/functional.py and the `dDequantizeNF4` decision tree in csrc/kernels.cu; they are
// `create_normal_map(0.9677083)`: normal quantiles at 8 equally spaced probabilities on each
// side, scaled so the largest is 1, with an exact zero). Code 7 is 0.0, code 15 is 1.0.
//
// Two byte orders meet here:
//   engine storage (DType::NF4, dtype.h)  per 64-block, 32 bytes; byte j = code of weight j in
//                                         the low nibble, weight j + 32 in the high nibble
//                                         (the INT4 order with G = 64, so the int4 kernels'
//                                         addressing carries over)
//   bitsandbytes (SrcType::NF4 source)    byte j = weight 2j in the HIGH nibble, weight 2j + 1
//                                         in the low nibble (kQuantizeBlockwise in csrc/kernels.cu:
//                                         `qvals[j] = q(vals[2j]) << 4 | q(vals[2j+1])`)
#pragma once

#include <cstdint>

namespace lc {

constexpr int64_t kNf4Block = 64;

// bitsandbytes' NF4 table (float32), index = 4-bit code. A macro as well, so CUDA device code
// (native/cuda/nf4.cuh) spells the same list without touching a host array.
#define LC_NF4_VALUES                                                                                  \
  -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,    \
      -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f, \
      0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,          \
      0.7229568362236023f, 1.0f
inline constexpr float kNf4Values[16] = {LC_NF4_VALUES};

// The code whose value is nearest to v (v is normally in [-1, 1]; ties go to the lower code).
int nf4_nearest(float v);

// One engine-storage row: cols / 2 code bytes and cols / 64 f32 scales -> cols values.
inline void dequantize_row_nf4(float* out, const uint8_t* codes, const float* scales, int64_t cols) {
  for (int64_t b = 0; b < cols / kNf4Block; b++) {
    const float d = scales[b];
    const uint8_t* q = codes + b * (kNf4Block / 2);
    float* o = out + b * kNf4Block;
    for (int64_t j = 0; j < kNf4Block / 2; j++) {
      o[j] = kNf4Values[q[j] & 0x0F] * d;
      o[j + kNf4Block / 2] = kNf4Values[q[j] >> 4] * d;
    }
  }
}

// cols f32 values (cols a multiple of 64) -> engine storage: per block, absmax = max |x| (the
// f32 scale) and code = nf4_nearest(x * (1 / absmax)), as bitsandbytes quantizes (a block of
// zeros gets scale 0 and code 7).
void quantize_row_nf4(uint8_t* codes, float* scales, const float* x, int64_t cols);

// bitsandbytes-order source blocks (SrcType::NF4: per 64 weights a little-endian f32 absmax and
// 32 code bytes, high nibble first) -> engine storage, exactly (codes regrouped, scale copied).
void repack_row_nf4(uint8_t* codes, float* scales, const uint8_t* src, int64_t cols);

// The same source blocks -> f32 values (absmax * table value, the numbers bitsandbytes gives).
void dequantize_nf4_source_blocks(float* y, const uint8_t* src, int64_t nblocks);

}  // namespace lc
