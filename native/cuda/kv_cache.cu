// kv_append: store this step's keys and values in one layer's cache (CPU twin:
// native/cpu/ops/kv_append_cpu.cc).
//
// Layout
//   k, v               f32 [n][kv_dim]   (k already rotated by rope)
//   cache.k, cache.v   [capacity][kv_dim] of cache.dtype: F32, F16 or BF16
//   pos                int32 [1], DEVICE memory: row i goes to cache row pos[0] + i (graph replay:
//                      the position changes between replays, the grid does not)
//   Conversion: F16 and BF16 round to nearest even (__float2half_rn / __float2bfloat16_rn), the
//   numbers of core/half.h's f32_to_f16 / f32_to_bf16 for every non-NaN input (overflow -> inf,
//   subnormals kept); F32 is a copy.
// Bounds: a cache row outside [0, capacity) is skipped (nothing written); the backend also checks
//   pos + n <= capacity before the step.
// Grid mapping: block 128 threads; grid.x covers one row's units, grid.y = min(n, 65535) with rows
//   strided over y; each thread stores its unit of the key row and of the value row.
//   VEC (k, v, cache.k, cache.v 16-byte aligned, kv_dim % unit == 0): F32 unit 4 values (one
//   16-byte load and store), F16/BF16 unit 8 values (two 16-byte loads, one 16-byte store).
//   Otherwise one value per thread.
// Fused: nothing.
#include <string>

#include "ops.cuh"

namespace lc::cuda {

namespace {

constexpr int kKvThreads = 128;

template <DType DT>
struct CacheElem;
template <>
struct CacheElem<DType::F32> {
  using T = float;
  __device__ static float from(float f) { return f; }
};
template <>
struct CacheElem<DType::F16> {
  using T = __half;
  __device__ static __half from(float f) { return __float2half_rn(f); }
};
template <>
struct CacheElem<DType::BF16> {
  using T = __nv_bfloat16;
  __device__ static __nv_bfloat16 from(float f) { return __float2bfloat16_rn(f); }
};

// Values per thread on the vector path: one 16-byte store into the cache.
template <DType DT, bool VEC>
__host__ __device__ constexpr int kv_unit() {
  return VEC ? 16 / int(sizeof(typename CacheElem<DT>::T)) : 1;
}

// One unit (u) of row src into dst (both already offset to the row).
template <DType DT, bool VEC>
__device__ __forceinline__ void store_unit(typename CacheElem<DT>::T* dst, const float* src, int64_t u) {
  using T = typename CacheElem<DT>::T;
  constexpr int UNIT = kv_unit<DT, VEC>();
  if constexpr (!VEC) {
    dst[u] = CacheElem<DT>::from(src[u]);
  } else if constexpr (DT == DType::F32) {
    store128(dst + UNIT * u, load128(src + UNIT * u));
  } else {
    const f128 a = load128(src + UNIT * u), b = load128(src + UNIT * u + 4);
    Packed128<T> o;
#pragma unroll
    for (int k = 0; k < 4; k++) {
      o[k] = CacheElem<DT>::from(a[k]);
      o[k + 4] = CacheElem<DT>::from(b[k]);
    }
    store128(dst + UNIT * u, o);
  }
}

template <DType DT, bool VEC>
__global__ void kv_append_kernel(void* cache_k, void* cache_v, const float* k, const float* v, int64_t n,
                                 int64_t kv_dim, int64_t capacity, const int32_t* pos) {
  using T = typename CacheElem<DT>::T;
  const int64_t u = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (u >= kv_dim / kv_unit<DT, VEC>()) return;
  const int64_t pos0 = __ldg(pos);
  for (int64_t i = blockIdx.y; i < n; i += gridDim.y) {
    const int64_t row = pos0 + i;
    if (row < 0 || row >= capacity) continue;  // guard: never write outside the cache
    store_unit<DT, VEC>(static_cast<T*>(cache_k) + row * kv_dim, k + i * kv_dim, u);
    store_unit<DT, VEC>(static_cast<T*>(cache_v) + row * kv_dim, v + i * kv_dim, u);
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <DType DT>
Status launch_kv_append(const KvLayer& cache, const float* k, const float* v, int64_t n, const int32_t* pos,
                        cudaStream_t stream) {
  const bool vec = aligned16(k) && aligned16(v) && aligned16(cache.k) && aligned16(cache.v) &&
                   cache.kv_dim % kv_unit<DT, true>() == 0;
  const int64_t units = vec ? cache.kv_dim / kv_unit<DT, true>() : cache.kv_dim;
  const dim3 grid(static_cast<unsigned>(ceil_div(units, int64_t(kKvThreads))),
                  static_cast<unsigned>(n < 65535 ? n : 65535));
  if (vec) {
    LC_LAUNCH((kv_append_kernel<DT, true>), grid, kKvThreads, 0, stream, cache.k, cache.v, k, v, n, cache.kv_dim,
              cache.capacity, pos);
  } else {
    LC_LAUNCH((kv_append_kernel<DT, false>), grid, kKvThreads, 0, stream, cache.k, cache.v, k, v, n, cache.kv_dim,
              cache.capacity, pos);
  }
  CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

}  // namespace

Status kv_append_cuda(const KvLayer& cache, const float* k, const float* v, int64_t n, const int32_t* pos,
                      cudaStream_t stream) {
  if (n <= 0 || cache.kv_dim <= 0 || cache.capacity <= 0) {
    return invalid_argument("kv_append_cuda: sizes must be positive, got n " + std::to_string(n) + ", kv_dim " +
                            std::to_string(cache.kv_dim) + ", capacity " + std::to_string(cache.capacity));
  }
  if (cache.k == nullptr || cache.v == nullptr || k == nullptr || v == nullptr || pos == nullptr) {
    return invalid_argument("kv_append_cuda: null pointer");
  }
  switch (cache.dtype) {
    case DType::F32: return launch_kv_append<DType::F32>(cache, k, v, n, pos, stream);
    case DType::F16: return launch_kv_append<DType::F16>(cache, k, v, n, pos, stream);
    case DType::BF16: return launch_kv_append<DType::BF16>(cache, k, v, n, pos, stream);
    default: break;
  }
  return unsupported(std::string("kv_append_cuda: unsupported cache dtype: ") + dtype_name(cache.dtype) +
                     " (f32, f16 or bf16)");
}

}  // namespace lc::cuda
