#include "nf4.h"

#include <cmath>
#include <cstring>

namespace lc {

int nf4_nearest(float v) {
  // The decision thresholds are the midpoints of neighbouring values (bitsandbytes' dQuantizeNF4
  // compares against the same midpoints); v above the midpoint of k and k + 1 takes k + 1.
  int code = 0;
  for (int k = 0; k < 15; k++) {
    const float mid = 0.5f * (kNf4Values[k] + kNf4Values[k + 1]);
    if (v > mid) code = k + 1;
  }
  return code;
}

void quantize_row_nf4(uint8_t* codes, float* scales, const float* x, int64_t cols) {
  constexpr int64_t half = kNf4Block / 2;
  for (int64_t b = 0; b < cols / kNf4Block; b++) {
    const float* xb = x + b * kNf4Block;
    float amax = 0.0f;
    for (int64_t j = 0; j < kNf4Block; j++) amax = std::fmax(amax, std::fabs(xb[j]));
    const float inv = amax != 0.0f ? 1.0f / amax : 0.0f;
    uint8_t* q = codes + b * half;
    for (int64_t j = 0; j < half; j++) {
      const int lo = amax != 0.0f ? nf4_nearest(xb[j] * inv) : 7;
      const int hi = amax != 0.0f ? nf4_nearest(xb[j + half] * inv) : 7;
      q[j] = uint8_t(lo | (hi << 4));
    }
    scales[b] = amax;
  }
}

void repack_row_nf4(uint8_t* codes, float* scales, const uint8_t* src, int64_t cols) {
  constexpr int64_t half = kNf4Block / 2;
  for (int64_t b = 0; b < cols / kNf4Block; b++) {
    const uint8_t* s = src + b * (4 + half);
    std::memcpy(scales + b, s, 4);
    uint8_t code[kNf4Block];
    for (int64_t j = 0; j < half; j++) {
      code[2 * j] = uint8_t(s[4 + j] >> 4);
      code[2 * j + 1] = uint8_t(s[4 + j] & 0x0F);
    }
    uint8_t* q = codes + b * half;
    for (int64_t j = 0; j < half; j++) q[j] = uint8_t(code[j] | (code[j + half] << 4));
  }
}

void dequantize_nf4_source_blocks(float* y, const uint8_t* src, int64_t nblocks) {
  constexpr int64_t half = kNf4Block / 2;
  for (int64_t b = 0; b < nblocks; b++) {
    const uint8_t* s = src + b * (4 + half);
    float d;
    std::memcpy(&d, s, 4);
    for (int64_t j = 0; j < half; j++) {
      y[b * kNf4Block + 2 * j] = kNf4Values[s[4 + j] >> 4] * d;
      y[b * kNf4Block + 2 * j + 1] = kNf4Values[s[4 + j] & 0x0F] * d;
    }
  }
}

}  // namespace lc
