// Weight: a 1-D or 2-D weight owned by an engine (1-D weights have rows = 1).
// KvLayer: one layer's key and value cache of one session.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dtype.h"

namespace lc {

struct Weight {
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t group = 0;  // INT4 group size, Q8_0: 32, NF4: 64, 0 otherwise
  uint8_t* data = nullptr;
  size_t nbytes = 0;

  // F32/F16/BF16: start of row r.
  const void* row(int64_t r, size_t elem_bytes) const { return data + size_t(r) * size_t(cols) * elem_bytes; }

  // Q8_0 planar parts.
  const int8_t* q8_codes(int64_t r) const { return reinterpret_cast<const int8_t*>(data) + size_t(r) * size_t(cols); }
  const uint16_t* q8_scales(int64_t r) const {
    return reinterpret_cast<const uint16_t*>(data + size_t(rows) * size_t(cols)) + size_t(r) * size_t(cols / kQ8Group);
  }

  // INT4 planar parts: codes, then {scale, min} f16 pairs.
  const uint8_t* int4_codes(int64_t r) const { return data + size_t(r) * size_t(cols / 2); }
  const uint16_t* int4_params(int64_t r) const {
    return reinterpret_cast<const uint16_t*>(data + size_t(rows) * size_t(cols / 2)) + size_t(r) * size_t(cols / group) * 2;
  }

  // NF4 planar parts: codes (int4_codes), then f32 scales [rows][cols/64].
  const float* nf4_scales(int64_t r) const {
    return reinterpret_cast<const float*>(data + size_t(rows) * size_t(cols / 2)) + size_t(r) * size_t(cols / 64);
  }
};

// Key and value rows of one layer: k[capacity][kv_dim], v[capacity][kv_dim], in F32 or F16.
// Row p holds the (already rotated) key / the value of the token at position p.
struct KvLayer {
  DType dtype = DType::F32;
  int64_t kv_dim = 0;
  int64_t capacity = 0;
  void* k = nullptr;
  void* v = nullptr;
};

}  // namespace lc
