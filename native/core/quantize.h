// Encoders from f32 rows into the storage types of dtype.h (round to nearest), used when
// weights are converted or quantized at load. Scalar and simple: they run once per load.
#pragma once

#include <cstdint>

namespace lc {

// cols f32 values -> cols int8 codes + cols/32 f16 scales; scale = absmax / 127.
void quantize_row_q8_0(int8_t* codes, uint16_t* scales, const float* x, int64_t cols);

// cols f32 values -> cols/2 code bytes + cols/group {scale, min} f16 pairs. Per group:
// min = smallest value, scale = (largest - smallest) / 15, q = round((x - min) / scale).
void quantize_row_int4(uint8_t* codes, uint16_t* params, const float* x, int64_t cols, int64_t group);

}  // namespace lc
