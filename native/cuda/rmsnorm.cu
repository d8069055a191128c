// rmsnorm: out[i][:] = w * (x[i][:] * 1/sqrt(mean(x[i]^2) + eps)) (CPU twin:
// native/cpu/ops/rmsnorm_cpu.cc).
//
// Layout
//   x, out  f32 [n][dim] (out may be x: every value is read before its own slot is written, by
//           the same thread, and x is read through the coherent path, not __ldg)
//   w       f32 [dim]
// Bounds: every index is below n * dim; threads past the row count or the row length do nothing.
// Grid mapping
//   dim <= 1024  rmsnorm_warp_kernel: one warp per row, 4 rows per 128-thread block,
//                grid ceil(n / 4). No __syncthreads (a warp whose row is past n exits whole).
//   dim >  1024  rmsnorm_block_kernel: one 256-thread block per row, grid n.
//   VEC (x, out, w 16-byte aligned and dim % 4 == 0): 16-byte loads and stores, and the row is kept
//   in registers (up to 8 float4 per thread: dim <= 1024 for a warp, <= 8192 for a block), so x is
//   read from memory once; longer rows re-read the rest (from L1/L2). Otherwise the scalar path
//   reads one float at a time and reads x twice.
// Numerics: the sum of squares is accumulated in f32 as per-thread partial sums (each float4's
//   four squares summed pairwise first, so a thread's chain is short: 4 float4 = 16 values for
//   dim 4096 with 256 threads, 8 float4 = 32 values for dim 1024 with a warp; the scalar path
//   rotates four accumulators), combined by a butterfly tree
//   (warp_reduce_sum / block_reduce_sum); then scale = 1 / sqrt(ss / dim + eps) with IEEE-rounded
//   division and square root (__fdiv_rn / __fsqrt_rn, immune to fast-math flags); the output is
//   w * (scale * x) rounded as the reference rounds it (__fmul_rn: no FMA). The reference sums in
//   double, so the difference is the f32 summation error: a few ulp (check: max rel err 3.4e-7).
// Fused: nothing (the residual add before it stays a separate add_cuda).
#include <string>

#include "ops.cuh"

namespace lc::cuda {

namespace {

constexpr int kWarpRowsPerBlock = 4;  // rmsnorm_warp_kernel: 4 warps, one row each
constexpr int kBlockThreads = 256;    // rmsnorm_block_kernel
constexpr int kCache = 8;             // float4 per thread held in registers on the VEC path
constexpr int64_t kWarpMaxDim = 1024;

__device__ __forceinline__ float sum_squares4(const f128& v) {
  return (v[0] * v[0] + v[1] * v[1]) + (v[2] * v[2] + v[3] * v[3]);
}

__device__ __forceinline__ float rms_scale(float ss, int64_t dim, float eps) {
  return __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(ss, static_cast<float>(dim)), eps)));
}

__device__ __forceinline__ f128 scale_row4(const f128& xv, const f128& wv, float scale) {
  f128 o;
#pragma unroll
  for (int k = 0; k < 4; k++) o[k] = __fmul_rn(wv[k], __fmul_rn(scale, xv[k]));
  return o;
}

// The part of one row that `rank` of `count` cooperating threads handles (units: float4 if VEC,
// else float); returns the thread's partial sum of squares, keeping up to kCache float4 in cache.
template <bool VEC>
__device__ __forceinline__ float row_partial_ss(const float* xr, int64_t dim, int rank, int count,
                                                f128 (&cache)[kCache]) {
  float ss = 0.0f;
  if constexpr (VEC) {
    const int64_t n4 = dim / 4;
    float acc = 0.0f;
#pragma unroll
    for (int k = 0; k < kCache; k++) {
      const int64_t u = rank + int64_t(k) * count;
      if (u < n4) {
        cache[k] = load128(xr + 4 * u);
        acc += sum_squares4(cache[k]);
      }
    }
    for (int64_t u = rank + int64_t(kCache) * count; u < n4; u += count) acc += sum_squares4(load128(xr + 4 * u));
    ss = acc;
  } else {
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    int k = 0;
    for (int64_t j = rank; j < dim; j += count, k = (k + 1) & 3) acc[k] += xr[j] * xr[j];
    ss = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  }
  return ss;
}

template <bool VEC>
__device__ __forceinline__ void row_write(float* orow, const float* xr, const float* w, int64_t dim, int rank,
                                          int count, const f128 (&cache)[kCache], float scale) {
  if constexpr (VEC) {
    const int64_t n4 = dim / 4;
#pragma unroll
    for (int k = 0; k < kCache; k++) {
      const int64_t u = rank + int64_t(k) * count;
      if (u < n4) store128(orow + 4 * u, scale_row4(cache[k], load128nc(w + 4 * u), scale));
    }
    for (int64_t u = rank + int64_t(kCache) * count; u < n4; u += count) {
      store128(orow + 4 * u, scale_row4(load128(xr + 4 * u), load128nc(w + 4 * u), scale));
    }
  } else {
    for (int64_t j = rank; j < dim; j += count) orow[j] = __fmul_rn(__ldg(w + j), __fmul_rn(scale, xr[j]));
  }
}

// One warp per row (dim <= 1024): block (32, 4), grid ceil(n / 4).
template <bool VEC>
__global__ void rmsnorm_warp_kernel(float* out, const float* x, const float* w, int64_t n, int64_t dim, float eps) {
  const int64_t row = int64_t(blockIdx.x) * kWarpRowsPerBlock + threadIdx.y;
  if (row >= n) return;  // the whole warp: no collective is left waiting on it
  const float* xr = x + row * dim;
  f128 cache[kCache];
  const float ss = warp_reduce_sum(row_partial_ss<VEC>(xr, dim, threadIdx.x, 32, cache));
  row_write<VEC>(out + row * dim, xr, w, dim, threadIdx.x, 32, cache, rms_scale(ss, dim, eps));
}

// One block per row (dim > 1024): block 256, grid n.
template <bool VEC>
__global__ void rmsnorm_block_kernel(float* out, const float* x, const float* w, int64_t dim, float eps) {
  const int64_t row = blockIdx.x;
  const float* xr = x + row * dim;
  f128 cache[kCache];
  const float ss = block_reduce_sum(row_partial_ss<VEC>(xr, dim, threadIdx.x, kBlockThreads, cache));
  row_write<VEC>(out + row * dim, xr, w, dim, threadIdx.x, kBlockThreads, cache, rms_scale(ss, dim, eps));
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

Status rmsnorm_cuda(float* out, const float* x, const float* w, int64_t n, int64_t dim, float eps,
                    cudaStream_t stream) {
  if (n <= 0 || dim <= 0) {
    return invalid_argument("rmsnorm_cuda: sizes must be positive, got n " + std::to_string(n) + ", dim " +
                            std::to_string(dim));
  }
  if (n > 0x7fffffff) return invalid_argument("rmsnorm_cuda: too many rows: " + std::to_string(n));
  if (out == nullptr || x == nullptr || w == nullptr) return invalid_argument("rmsnorm_cuda: null pointer");
  const bool vec = dim % 4 == 0 && aligned16(out) && aligned16(x) && aligned16(w);
  if (dim <= kWarpMaxDim) {
    const dim3 block(32, kWarpRowsPerBlock);
    const unsigned grid = static_cast<unsigned>(ceil_div(n, int64_t(kWarpRowsPerBlock)));
    if (vec) {
      LC_LAUNCH(rmsnorm_warp_kernel<true>, grid, block, 0, stream, out, x, w, n, dim, eps);
    } else {
      LC_LAUNCH(rmsnorm_warp_kernel<false>, grid, block, 0, stream, out, x, w, n, dim, eps);
    }
  } else {
    const unsigned grid = static_cast<unsigned>(n);
    if (vec) {
      LC_LAUNCH(rmsnorm_block_kernel<true>, grid, kBlockThreads, 0, stream, out, x, w, dim, eps);
    } else {
      LC_LAUNCH(rmsnorm_block_kernel<false>, grid, kBlockThreads, 0, stream, out, x, w, dim, eps);
    }
  }
  CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

}  // namespace lc::cuda
