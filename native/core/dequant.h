// Scalar dequantization of one weight row to f32: the definition of each storage type's
// numbers (see dtype.h), used by the reference kernels and by the embedding lookup.
#pragma once

#include "half.h"
#include "nf4.h"
#include "tensor.h"

namespace lc {

inline void dequantize_row(float* out, const Weight& w, int64_t r) {
  const int64_t cols = w.cols;
  switch (w.dtype) {
    case DType::F32: {
      const float* src = static_cast<const float*>(w.row(r, 4));
      for (int64_t c = 0; c < cols; c++) out[c] = src[c];
      break;
    }
    case DType::F16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.row(r, 2));
      for (int64_t c = 0; c < cols; c++) out[c] = f16_to_f32(src[c]);
      break;
    }
    case DType::BF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.row(r, 2));
      for (int64_t c = 0; c < cols; c++) out[c] = bf16_to_f32(src[c]);
      break;
    }
    case DType::Q8_0: {
      const int8_t* codes = w.q8_codes(r);
      const uint16_t* scales = w.q8_scales(r);
      for (int64_t c = 0; c < cols; c++) out[c] = float(codes[c]) * f16_to_f32(scales[c / kQ8Group]);
      break;
    }
    case DType::INT4: {
      const int64_t g = w.group, half = g / 2;
      const uint8_t* codes = w.int4_codes(r);
      const uint16_t* params = w.int4_params(r);
      for (int64_t c = 0; c < cols; c++) {
        const int64_t gi = c / g, j = c % g;
        const uint8_t byte = codes[gi * half + (j % half)];
        const int q = (j < half) ? (byte & 0x0F) : (byte >> 4);
        const float scale = f16_to_f32(params[2 * gi]), min = f16_to_f32(params[2 * gi + 1]);
        out[c] = float(q) * scale + min;
      }
      break;
    }
    case DType::NF4:
      dequantize_row_nf4(out, w.int4_codes(r), w.nf4_scales(r), cols);
      break;
  }
}

}  // namespace lc
