// What every CUDA file of the project uses, for nvcc and for the SIMT emulator alike:
//   CUDA_TRY(expr)           early-return an lc::Status from a failed runtime call
//   ceil_div(a, b)
//   thread_rank(), lane_id(), warp_id(), lanes_mask(n)
//   warp_reduce_sum/max<WIDTH>(v), block_reduce_sum/max(v)
//   Packed128<T> + load128/load128cs/load128nc/store128/store128cs/store128cg: 16-byte vector access
// and, through launch.cuh / cuda_api.h, LC_LAUNCH, LC_DYNAMIC_SMEM, LC_SIMT, LC_CUDA_ARCH.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "core/status.h"
#include "cuda_api.h"
#include "launch.cuh"

// Call-site parameters for emulator diagnostics (nothing under nvcc).
#if LC_SIMT
#define LC_SITE_DECL , LC_SIMT_SITE_DECL
#define LC_CHECK_ALIGNED(p, bytes, what) ::lc_simt::check_aligned((p), (bytes), (what), LC_SIMT_SITE)
#else
#define LC_SITE_DECL
#define LC_CHECK_ALIGNED(p, bytes, what) ((void)0)
#endif

namespace lc {

// ---- errors -------------------------------------------------------------------------------------

// The Status for a failed CUDA call: Code::OutOfMemory for cudaErrorMemoryAllocation, Code::Cuda
// otherwise; the message names the error, its text and the expression. It also consumes the
// thread's last-error slot, so a later cudaGetLastError() does not report the same error again.
inline Status cuda_status(cudaError_t err, const char* expr, const char* file, int line) {
  (void)cudaGetLastError();
  const char* base = std::strrchr(file, '/');
  std::string msg = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err) + " (in " + expr + " at " +
                    (base ? base + 1 : file) + ":" + std::to_string(line) + ")";
  return Status(err == cudaErrorMemoryAllocation ? Code::OutOfMemory : Code::Cuda, std::move(msg));
}

}  // namespace lc

// Early return on a CUDA error: CUDA_TRY(cudaMalloc(&p, bytes)); after a launch:
//   LC_LAUNCH(kernel, grid, block, smem, stream, args...);
//   CUDA_TRY(cudaGetLastError());
#define CUDA_TRY(expr)                                                                  \
  do {                                                                                  \
    const cudaError_t lc_cuda_err_ = (expr);                                            \
    if (lc_cuda_err_ != cudaSuccess) return ::lc::cuda_status(lc_cuda_err_, #expr, __FILE__, __LINE__); \
  } while (0)

namespace lc {

// ---- indexing -----------------------------------------------------------------------------------

template <class T, class U>
__host__ __device__ constexpr typename std::common_type<T, U>::type ceil_div(T a, U b) {
  return (a + b - 1) / b;
}

// Linear index of the thread in its block (x fastest), its lane and its warp.
__device__ __forceinline__ int thread_rank() {
  return static_cast<int>(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
}
__device__ __forceinline__ int lane_id() { return thread_rank() & 31; }
__device__ __forceinline__ int warp_id() { return thread_rank() >> 5; }
// Mask of lanes 0..n-1 (n >= 32: the whole warp): the mask for a warp whose first n lanes take part.
__host__ __device__ constexpr unsigned lanes_mask(int n) { return n >= 32 ? 0xffffffffu : ((1u << n) - 1u); }

// ---- reductions ---------------------------------------------------------------------------------

struct SumOp {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a > b ? a : b; }
};

// Butterfly reduction within each group of WIDTH consecutive lanes (WIDTH a power of two <= 32):
// every lane gets its group's result. All 32 lanes of the warp must call it (full mask): in a block
// whose size is not a multiple of 32, give the missing lanes of the last warp nothing to do but
// this call (pass the identity), rather than letting them exit.
template <int WIDTH = 32, class T, class Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
  static_assert(WIDTH >= 1 && WIDTH <= 32 && (WIDTH & (WIDTH - 1)) == 0, "WIDTH: a power of two up to 32");
#pragma unroll
  for (int offset = WIDTH / 2; offset > 0; offset >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, offset, WIDTH));
  return v;
}
template <int WIDTH = 32, class T>
__device__ __forceinline__ T warp_reduce_sum(T v) {
  return warp_reduce<WIDTH>(v, SumOp{});
}
template <int WIDTH = 32, class T>
__device__ __forceinline__ T warp_reduce_max(T v) {
  return warp_reduce<WIDTH>(v, MaxOp{});
}

// Reduction over the whole block; every thread gets the result. The block must be whole warps
// (size a multiple of 32, at most 1024) and every thread must call it: it contains two
// __syncthreads (the second lets the function be called again straight away).
template <class T, class Op>
__device__ __forceinline__ T block_reduce(T v, Op op, T identity) {
  __shared__ T partial[32];
  const int lane = lane_id(), warp = warp_id();
  const int n_warps = static_cast<int>(blockDim.x * blockDim.y * blockDim.z) >> 5;
  v = warp_reduce(v, op);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = warp_reduce(lane < n_warps ? partial[lane] : identity, op);
  __syncthreads();
  return v;
}
__device__ __forceinline__ float block_reduce_sum(float v) { return block_reduce(v, SumOp{}, 0.0f); }
__device__ __forceinline__ float block_reduce_max(float v) { return block_reduce(v, MaxOp{}, -INFINITY); }

// ---- 16-byte vectors (llm.c's Packed128) ----------------------------------------------------------
// One 128-bit load or store moves 16 bytes: 4 floats, 8 bf16/f16, 16 int8. Addresses must be
// 16-byte aligned (the emulator checks and fails the launch with cudaErrorMisalignedAddress).
template <class T>
struct alignas(16) Packed128 {
  static constexpr int size = 16 / static_cast<int>(sizeof(T));
  static_assert(16 % sizeof(T) == 0, "Packed128: element size must divide 16");
  T payload[size];

  Packed128() = default;
  __host__ __device__ static Packed128 from_bits(int4 bits) {
    Packed128 p;
    std::memcpy(static_cast<void*>(p.payload), &bits, 16);
    return p;
  }
  __host__ __device__ static Packed128 constant(T value) {
    Packed128 p;
    for (int i = 0; i < size; i++) p.payload[i] = value;  // constant trip count: unrolled anyway
    return p;
  }
  __host__ __device__ static Packed128 zeros() { return from_bits(make_int4(0, 0, 0, 0)); }
  __host__ __device__ int4 get_bits() const {
    int4 bits;
    std::memcpy(&bits, static_cast<const void*>(payload), 16);
    return bits;
  }
  __host__ __device__ T& operator[](int i) { return payload[i]; }
  __host__ __device__ const T& operator[](int i) const { return payload[i]; }
};

using f128 = Packed128<float>;
using bf16x8 = Packed128<__nv_bfloat16>;
using f16x8 = Packed128<__half>;
using i8x16 = Packed128<int8_t>;

// Plain load (cached in L1).
template <class T>
__device__ __forceinline__ Packed128<T> load128(const T* address LC_SITE_DECL) {
  LC_CHECK_ALIGNED(address, 16, "load128");
  return Packed128<T>::from_bits(*reinterpret_cast<const int4*>(address));
}
// Streaming load: data read once (weights in a matvec), keeps it from evicting reused data.
template <class T>
__device__ __forceinline__ Packed128<T> load128cs(const T* address LC_SITE_DECL) {
  LC_CHECK_ALIGNED(address, 16, "load128cs");
  return Packed128<T>::from_bits(__ldcs(reinterpret_cast<const int4*>(address)));
}
// Read-only (non-coherent) path: data not written by this kernel.
template <class T>
__device__ __forceinline__ Packed128<T> load128nc(const T* address LC_SITE_DECL) {
  LC_CHECK_ALIGNED(address, 16, "load128nc");
  return Packed128<T>::from_bits(__ldg(reinterpret_cast<const int4*>(address)));
}
template <class T>
__device__ __forceinline__ void store128(T* target, Packed128<T> value LC_SITE_DECL) {
  LC_CHECK_ALIGNED(target, 16, "store128");
  *reinterpret_cast<int4*>(target) = value.get_bits();
}
// Streaming store: output not read again soon.
template <class T>
__device__ __forceinline__ void store128cs(T* target, Packed128<T> value LC_SITE_DECL) {
  LC_CHECK_ALIGNED(target, 16, "store128cs");
  __stcs(reinterpret_cast<int4*>(target), value.get_bits());
}
// Store cached in L2 only (bypasses L1): output read by another block or kernel.
template <class T>
__device__ __forceinline__ void store128cg(T* target, Packed128<T> value LC_SITE_DECL) {
  LC_CHECK_ALIGNED(target, 16, "store128cg");
  __stcg(reinterpret_cast<int4*>(target), value.get_bits());
}

}  // namespace lc
