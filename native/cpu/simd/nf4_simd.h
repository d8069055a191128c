// The NF4 matmuls of the x86 SIMD tiers (nf4_avx2.cc, nf4_avx512.cc; driver: nf4_matmul.h).
// Same contract as CpuKernels::matmul, for w.dtype == DType::NF4 only.
#pragma once

#include "../kernels.h"

namespace lc {

void matmul_nf4_avx2(const CpuContext& ctx, float* out, const float* x, const Weight& w, int64_t n);
void matmul_nf4_avx512(const CpuContext& ctx, float* out, const float* x, const Weight& w, int64_t n);

}  // namespace lc
