// Elementwise ops over count f32 values (CPU twins: native/cpu/ops/elementwise_cpu.cc):
//   swiglu  out = silu(gate) * up, silu(g) = g / (1 + exp(-g))
//   add     out = a + b
//
// Layout: flat f32 arrays of count values; out may alias any input (each value is read and then
//   written by the same thread, through the coherent path: no __ldg / .nc loads here, as the
//   read-only cache is not coherent with this kernel's own stores).
// Bounds: every access is below count (the vector loop stops at count / 4 float4, the tail is
//   scalar).
// Grid mapping: block 256, grid min(ceil(units / 256), 2048) with a grid-stride loop (the grid
//   depends on count only). VEC (out and both inputs 16-byte aligned): float4 loads and stores
//   over count / 4 units, then the last count % 4 values one per thread; otherwise scalar.
// Numerics
//   add: one IEEE rounding, bit-identical to add_cpu.
//   swiglu: g / (1 + expf(-g)) * up, with IEEE division (__fdiv_rn: correct even with fast-math
//     flags). Only expf differs from the CPU's std::exp (CUDA's expf: at most 2 ulp), so the result
//     is within a few ulp. Large |g| is safe: for g < -88.7 expf(-g) overflows to +inf and
//     g / inf = -0 (the true limit), for g > 88.7 expf(-g) is 0 and the result is g * up; no
//     NaN or inf arises from the overflow (only from inf / NaN inputs, as on the CPU).
// Fused: nothing (swiglu is the only fusion of the FFN: gate and up come from two matmuls).
#include <string>

#include "ops.cuh"

namespace lc::cuda {

namespace {

constexpr int kElementwiseThreads = 256;
constexpr int64_t kElementwiseMaxBlocks = 2048;

struct SwigluOp {
  __device__ __forceinline__ float operator()(float g, float u) const {
    const float silu = __fdiv_rn(g, __fadd_rn(1.0f, expf(-g)));
    return __fmul_rn(silu, u);
  }
};

struct AddOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return __fadd_rn(a, b); }
};

// out[j] = op(a[j], b[j]) for j < count, grid-stride.
template <bool VEC, class Op>
__device__ __forceinline__ void binary_map(float* out, const float* a, const float* b, int64_t count, Op op) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t scalar_from = 0;
  if constexpr (VEC) {
    const int64_t n4 = count / 4;
    for (int64_t u = first; u < n4; u += stride) {
      const f128 av = load128(a + 4 * u), bv = load128(b + 4 * u);
      f128 o;
#pragma unroll
      for (int k = 0; k < 4; k++) o[k] = op(av[k], bv[k]);
      store128(out + 4 * u, o);
    }
    scalar_from = 4 * n4;
  }
  for (int64_t j = scalar_from + first; j < count; j += stride) out[j] = op(a[j], b[j]);
}

template <bool VEC>
__global__ void swiglu_kernel(float* out, const float* gate, const float* up, int64_t count) {
  binary_map<VEC>(out, gate, up, count, SwigluOp{});
}

template <bool VEC>
__global__ void add_kernel(float* out, const float* a, const float* b, int64_t count) {
  binary_map<VEC>(out, a, b, count, AddOp{});
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

Status check_args(const char* op, float* out, const float* a, const float* b, int64_t count) {
  if (count <= 0) return invalid_argument(std::string(op) + ": count must be positive, got " + std::to_string(count));
  if (out == nullptr || a == nullptr || b == nullptr) return invalid_argument(std::string(op) + ": null pointer");
  return Status::Ok();
}

unsigned elementwise_blocks(int64_t count, bool vec) {
  const int64_t units = vec ? (count + 3) / 4 : count;
  const int64_t blocks = ceil_div(units, int64_t(kElementwiseThreads));
  return static_cast<unsigned>(blocks < kElementwiseMaxBlocks ? blocks : kElementwiseMaxBlocks);
}

}  // namespace

Status swiglu_cuda(float* out, const float* gate, const float* up, int64_t count, cudaStream_t stream) {
  LC_TRY(check_args("swiglu_cuda", out, gate, up, count));
  const bool vec = aligned16(out) && aligned16(gate) && aligned16(up);
  if (vec) {
    LC_LAUNCH(swiglu_kernel<true>, elementwise_blocks(count, true), kElementwiseThreads, 0, stream, out, gate, up,
              count);
  } else {
    LC_LAUNCH(swiglu_kernel<false>, elementwise_blocks(count, false), kElementwiseThreads, 0, stream, out, gate, up,
              count);
  }
  CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

Status add_cuda(float* out, const float* a, const float* b, int64_t count, cudaStream_t stream) {
  LC_TRY(check_args("add_cuda", out, a, b, count));
  const bool vec = aligned16(out) && aligned16(a) && aligned16(b);
  if (vec) {
    LC_LAUNCH(add_kernel<true>, elementwise_blocks(count, true), kElementwiseThreads, 0, stream, out, a, b, count);
  } else {
    LC_LAUNCH(add_kernel<false>, elementwise_blocks(count, false), kElementwiseThreads, 0, stream, out, a, b, count);
  }
  CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

}  // namespace lc::cuda
