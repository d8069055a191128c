#include "quantize.h"

#include <algorithm>
#include <cmath>

#include "dtype.h"
#include "half.h"

namespace lc {

void quantize_row_q8_0(int8_t* codes, uint16_t* scales, const float* x, int64_t cols) {
  for (int64_t b = 0; b < cols / kQ8Group; b++) {
    const float* xb = x + b * kQ8Group;
    float amax = 0.0f;
    for (int64_t j = 0; j < kQ8Group; j++) amax = std::max(amax, std::fabs(xb[j]));
    const uint16_t d16 = f32_to_f16(amax / 127.0f);
    const float d = f16_to_f32(d16);
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    for (int64_t j = 0; j < kQ8Group; j++) {
      const float q = std::nearbyint(xb[j] * inv);
      codes[b * kQ8Group + j] = int8_t(std::clamp(q, -127.0f, 127.0f));
    }
    scales[b] = d16;
  }
}

void quantize_row_int4(uint8_t* codes, uint16_t* params, const float* x, int64_t cols, int64_t group) {
  const int64_t half = group / 2;
  for (int64_t gi = 0; gi < cols / group; gi++) {
    const float* xg = x + gi * group;
    float lo = xg[0], hi = xg[0];
    for (int64_t j = 1; j < group; j++) {
      lo = std::min(lo, xg[j]);
      hi = std::max(hi, xg[j]);
    }
    const uint16_t scale16 = f32_to_f16((hi - lo) / 15.0f);
    const uint16_t min16 = f32_to_f16(lo);
    const float scale = f16_to_f32(scale16), min = f16_to_f32(min16);
    const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
    uint8_t* cg = codes + gi * half;
    for (int64_t j = 0; j < half; j++) {
      const int q0 = int(std::clamp(std::nearbyint((xg[j] - min) * inv), 0.0f, 15.0f));
      const int q1 = int(std::clamp(std::nearbyint((xg[j + half] - min) * inv), 0.0f, 15.0f));
      cg[j] = uint8_t(q0 | (q1 << 4));
    }
    params[2 * gi] = scale16;
    params[2 * gi + 1] = min16;
  }
}

}  // namespace lc
