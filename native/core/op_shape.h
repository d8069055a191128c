// The op and sizes one microbenchmark case runs (what the CPU op bench, core/op_bench.h, and the
// CUDA op bench, cuda/bench.h, share; each says which fields its ops read).
#pragma once

#include <cstdint>
#include <string>

#include "dtype.h"

namespace lc {

struct OpShape {
  std::string op;
  DType dtype = DType::F32;  // weight of matmul / embed
  int64_t group = 32;        // INT4 group
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t width = 0;
  int64_t n = 1;  // token rows
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t ctx = 0;
  DType kv_dtype = DType::F16;
};

}  // namespace lc
