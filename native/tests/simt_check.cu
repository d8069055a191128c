// simt_check: the CUDA infrastructure (common.cuh, launch.cuh, ptx.cuh) and the SIMT emulator,
// checked with real kernels. The same file builds two ways:
//   - with g++ against the emulator (target simt_check, LLAMA_CUDA_SIMT=ON): runs on any CPU, in CI;
//   - with nvcc for sm_80/86/89/90a (target simt_check_cuda, LLAMA_CUDA_CUDA=ON): on a GPU it runs
//     the same checks on the hardware, which is what pins the emulator's fragment layouts to the
//     tensor cores'. Checks of emulator-only behavior (deadlock reports, the memory cap, stale
//     cp.async data, poisoned shuffles) run only in the emulator build.
// Usage: simt_check [--bench]. Prints one line per check with evidence on failure (first
// mismatches, worst index, tolerance); exits 1 if any check failed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/ptx.cuh"

namespace lc {
namespace {

// =================================================================================================
// Kernels
// =================================================================================================

// Sum and max of each block's slice of x (n_per_block elements, grid-stride inside the block).
// Any block shape whose size is a multiple of 32.
__global__ void block_sum_kernel(float* out_sum, float* out_max, const float* x, int n_per_block) {
  const float* row = x + static_cast<size_t>(blockIdx.x) * n_per_block;
  const int nt = static_cast<int>(blockDim.x * blockDim.y * blockDim.z);
  float s = 0.0f, m = -INFINITY;
  for (int i = thread_rank(); i < n_per_block; i += nt) {
    s += row[i];
    m = fmaxf(m, row[i]);
  }
  s = block_reduce_sum(s);
  m = block_reduce_max(m);
  if (thread_rank() == 0) {
    out_sum[blockIdx.x] = s;
    out_max[blockIdx.x] = m;
  }
}

// Every shuffle flavor over a list of (mode, arg, width) cases; value of lane = 1000*warp + lane + 1.
// out[c][thread]. Also 64-bit and bf16 shuffles in out64 / outbf.
__global__ void shuffle_kernel(int* out, long long* out64, float* outbf, const int* cases, int n_cases) {
  const int tid = thread_rank(), nt = static_cast<int>(blockDim.x);
  const int v = 1000 * warp_id() + lane_id() + 1;
  for (int c = 0; c < n_cases; c++) {
    const int mode = cases[3 * c], arg = cases[3 * c + 1], width = cases[3 * c + 2];
    int r = 0;
    switch (mode) {
      case 0: r = __shfl_sync(0xffffffffu, v, arg, width); break;
      case 1: r = __shfl_up_sync(0xffffffffu, v, static_cast<unsigned>(arg), width); break;
      case 2: r = __shfl_down_sync(0xffffffffu, v, static_cast<unsigned>(arg), width); break;
      default: r = __shfl_xor_sync(0xffffffffu, v, arg, width); break;
    }
    out[c * nt + tid] = r;
  }
  const long long big = (static_cast<long long>(v) << 33) + v;
  out64[tid] = __shfl_xor_sync(0xffffffffu, big, 5);
  const __nv_bfloat16 b = __float2bfloat16(static_cast<float>(v));
  outbf[tid] = __bfloat162float(__shfl_down_sync(0xffffffffu, b, 3, 8));
}

// A 48-thread block: warp 1 has 16 lanes. Reductions with a mask of the lanes that exist, and two
// independent 16-lane groups inside warp 0 (masks 0x0000ffff and 0xffff0000).
__global__ void partial_warp_kernel(int* sums, int* xors, unsigned* ballots) {
  const int tid = thread_rank(), lane = lane_id(), warp = warp_id();
  const int lanes = min(32, static_cast<int>(blockDim.x) - warp * 32);
  const unsigned mask = lanes_mask(lanes);
  const int v = tid + 1;
  int s = v;
  for (int off = 16; off > 0; off >>= 1) {
    const int o = __shfl_down_sync(mask, s, off);
    if (lane + off < lanes) s += o;  // reads from beyond the mask are discarded
  }
  sums[tid] = s;
  if (warp == 0) {
    const unsigned half = lane < 16 ? 0x0000ffffu : 0xffff0000u;
    xors[tid] = __shfl_xor_sync(half, v, 3, 16);
    ballots[tid] = __ballot_sync(half, v % 3 == 0);
  }
  __syncwarp(mask);
}

// Votes and block-wide predicates; 9 results per thread.
__global__ void vote_kernel(unsigned* out) {
  const int tid = thread_rank(), lane = lane_id();
  const int pred = (tid * 7 + static_cast<int>(blockIdx.x)) % 5 == 0;
  unsigned* o = out + (static_cast<size_t>(blockIdx.x) * blockDim.x + tid) * 9;
  o[0] = __ballot_sync(0xffffffffu, pred);
  o[1] = static_cast<unsigned>(__any_sync(0xffffffffu, pred));
  o[2] = static_cast<unsigned>(__all_sync(0xffffffffu, lane < 40));
  o[3] = static_cast<unsigned>(__all_sync(0xffffffffu, pred));
  o[4] = static_cast<unsigned>(__syncthreads_count(pred));
  o[5] = static_cast<unsigned>(__syncthreads_and(tid < 1000));
  o[6] = static_cast<unsigned>(__syncthreads_or(tid == 37));
  o[7] = __reduce_add_sync(0xffffffffu, static_cast<unsigned>(tid));
  o[8] = static_cast<unsigned>(__reduce_max_sync(0xffffffffu, (tid * 37) % 101));
}

// Reverses each block's slice of n floats through dynamic shared memory (n * 4 bytes of it).
__global__ void reverse_kernel(float* out, const float* in, int n) {
  LC_DYNAMIC_SMEM(float, buf);
  const float* src = in + static_cast<size_t>(blockIdx.x) * n;
  float* dst = out + static_cast<size_t>(blockIdx.x) * n;
  for (int i = thread_rank(); i < n; i += blockDim.x) buf[i] = src[i];
  __syncthreads();
  for (int i = thread_rank(); i < n; i += blockDim.x) dst[i] = buf[n - 1 - i];
}

// Histogram, max, float count in shared memory, CAS increment.
__global__ void atomics_kernel(int* hist, int* max_out, float* count, unsigned* cas_count, const int* data, int n) {
  __shared__ float local;
  if (thread_rank() == 0) local = 0.0f;
  __syncthreads();
  const int stride = static_cast<int>(blockDim.x * gridDim.x);
  for (int i = static_cast<int>(blockIdx.x * blockDim.x) + thread_rank(); i < n; i += stride) {
    atomicAdd(&hist[data[i] & 15], 1);
    atomicMax(max_out, data[i]);
    atomicAdd(&local, 1.0f);
  }
  unsigned old = *cas_count, assumed;
  do {
    assumed = old;
    old = atomicCAS(cas_count, assumed, assumed + 1u);
  } while (old != assumed);
  __syncthreads();
  if (thread_rank() == 0) atomicAdd(count, local);
}

// y = a*x + y over n elements with a 2D grid of 3D blocks.
__global__ void grid_stride_kernel(float* y, const float* x, float a, long long n) {
  const long long per_block = static_cast<long long>(blockDim.x) * blockDim.y * blockDim.z;
  const long long block = blockIdx.x + static_cast<long long>(gridDim.x) * blockIdx.y;
  const long long total = per_block * gridDim.x * gridDim.y;
  for (long long i = block * per_block + thread_rank(); i < n; i += total) y[i] = a * x[i] + y[i];
}

// out[global thread] = its coordinates, packed: checks the builtin variables in 3D.
__global__ void index_kernel(unsigned* out) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned per_block = blockDim.x * blockDim.y * blockDim.z;
  out[block * per_block + static_cast<unsigned>(thread_rank())] =
      threadIdx.x | (threadIdx.y << 4) | (threadIdx.z << 8) | (blockIdx.x << 12) | (blockIdx.y << 16) | (blockIdx.z << 20);
}

__device__ __forceinline__ uint16_t bits16(__nv_bfloat16 x) { return __bfloat16_as_ushort(x); }
__device__ __forceinline__ uint16_t bits16(__half x) { return __half_as_ushort(x); }
__device__ __forceinline__ uint32_t pack2(uint16_t lo, uint16_t hi) {
  return static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
}

template <class T>
__device__ __forceinline__ void mma_t(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  if constexpr (std::is_same<T, __half>::value) {
    mma_m16n8k16_f16(acc, a, b);
  } else {
    mma_m16n8k16_bf16(acc, a, b);
  }
}

// One warp, one 16x8x16 MMA, fragments gathered from row-major A (16x16), B (16x8, K x N) and
// C (16x8) with the PTX ISA formulas: pins the mma layout independently of ldmatrix.
template <class T>
__global__ void mma_fragment_kernel(float* D, const T* A, const T* B, const float* C) {
  const int lane = lane_id(), g = lane >> 2, t = lane & 3;
  uint32_t a[4], b[2];
  a[0] = pack2(bits16(A[g * 16 + 2 * t]), bits16(A[g * 16 + 2 * t + 1]));
  a[1] = pack2(bits16(A[(g + 8) * 16 + 2 * t]), bits16(A[(g + 8) * 16 + 2 * t + 1]));
  a[2] = pack2(bits16(A[g * 16 + 2 * t + 8]), bits16(A[g * 16 + 2 * t + 9]));
  a[3] = pack2(bits16(A[(g + 8) * 16 + 2 * t + 8]), bits16(A[(g + 8) * 16 + 2 * t + 9]));
  b[0] = pack2(bits16(B[(2 * t) * 8 + g]), bits16(B[(2 * t + 1) * 8 + g]));
  b[1] = pack2(bits16(B[(2 * t + 8) * 8 + g]), bits16(B[(2 * t + 9) * 8 + g]));
  const float c[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t], C[(g + 8) * 8 + 2 * t + 1]};
  float d[4];
  if constexpr (std::is_same<T, __half>::value) {
    mma_m16n8k16_f16(d, a, b, c);
  } else {
    mma_m16n8k16_bf16(d, a, b, c);
  }
  D[g * 8 + 2 * t] = d[0];
  D[g * 8 + 2 * t + 1] = d[1];
  D[(g + 8) * 8 + 2 * t] = d[2];
  D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

// One warp: four 8x8 matrices of 16-bit values (src, m*64 + r*8 + c) through shared memory, then
// every ldmatrix variant; out[variant][lane][4].
__global__ void ldmatrix_kernel(uint32_t* out, const uint16_t* src) {
  __shared__ __align__(16) uint16_t tile[4][8][16];  // rows padded to 32 bytes
  const int lane = lane_id();
  for (int i = lane; i < 4 * 64; i += 32) tile[i / 64][(i / 8) % 8][i % 8] = src[i];
  __syncwarp();
  const void* row = &tile[lane / 8][lane % 8][0];
  uint32_t r4[4], r4t[4], r2[2], r2t[2], r1, r1t;
  ldmatrix_x4(r4, row);
  ldmatrix_x4_trans(r4t, row);
  ldmatrix_x2(r2, row);
  ldmatrix_x2_trans(r2t, row);
  ldmatrix_x1(r1, row);
  ldmatrix_x1_trans(r1t, row);
  uint32_t* o = out + lane * 4;
  for (int i = 0; i < 4; i++) {
    o[0 * 128 + i] = r4[i];
    o[1 * 128 + i] = r4t[i];
    o[2 * 128 + i] = i < 2 ? r2[i] : 0u;
    o[3 * 128 + i] = i < 2 ? r2t[i] : 0u;
    o[4 * 128 + i] = i < 1 ? r1 : 0u;
    o[5 * 128 + i] = i < 1 ? r1t : 0u;
  }
}

// Tiled tensor-core matmuls, 32x32 block tile, 32-wide K steps, 4 warps in 2x2 (16x16 of C each),
// two-stage cp.async pipeline, ldmatrix fragments, f32 accumulate. Bounds: M and N any; K a
// multiple of 8 (16-byte rows); the NN variant also needs N a multiple of 8.
constexpr int kTile = 32;
constexpr int kPad = 8;  // row padding (16 bytes): keeps ldmatrix rows 16-byte aligned and off one bank

// C[M][N] = A[M][K] x W[N][K]^T  (W row-major, one row per output column: the nn.Linear layout)
template <class T>
__global__ void __launch_bounds__(128) matmul_nt_kernel(float* C, const T* A, const T* W, int M, int N, int K) {
  __shared__ __align__(16) T As[2][kTile][kTile + kPad];
  __shared__ __align__(16) T Ws[2][kTile][kTile + kPad];
  const int tid = thread_rank(), lane = lane_id(), warp = warp_id();
  const int wm = warp >> 1, wn = warp & 1;
  const int m0 = static_cast<int>(blockIdx.y) * kTile, n0 = static_cast<int>(blockIdx.x) * kTile;
  const int lrow = tid >> 2, lcol = (tid & 3) * 8;  // each thread copies 16 bytes of A and of W per tile
  auto load = [&](int stage, int kt) {
    const int k = kt * kTile + lcol;
    const bool a_ok = m0 + lrow < M && k < K, w_ok = n0 + lrow < N && k < K;
    cp_async_16_zfill(&As[stage][lrow][lcol], a_ok ? A + static_cast<size_t>(m0 + lrow) * K + k : A, a_ok ? 16 : 0);
    cp_async_16_zfill(&Ws[stage][lrow][lcol], w_ok ? W + static_cast<size_t>(n0 + lrow) * K + k : W, w_ok ? 16 : 0);
  };
  float acc[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
  const int n_tiles = ceil_div(K, kTile);
  load(0, 0);
  cp_async_commit();
  for (int kt = 0; kt < n_tiles; kt++) {
    const int s = kt & 1;
    if (kt + 1 < n_tiles) load(s ^ 1, kt + 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    for (int kk = 0; kk < kTile; kk += 16) {
      uint32_t a[4], b[4];
      ldmatrix_x4(a, &As[s][wm * 16 + (lane & 15)][kk + (lane >> 4) * 8]);
      ldmatrix_x4(b, &Ws[s][wn * 16 + (lane & 7) + ((lane >> 4) << 3)][kk + ((lane >> 3) & 1) * 8]);
      const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
      mma_t<T>(acc[0], a, b0);
      mma_t<T>(acc[1], a, b1);
    }
    __syncthreads();
  }
  const int g = lane >> 2, t = lane & 3;
  for (int nt = 0; nt < 2; nt++) {
    for (int i = 0; i < 4; i++) {
      const int row = m0 + wm * 16 + g + (i >= 2 ? 8 : 0), col = n0 + wn * 16 + nt * 8 + 2 * t + (i & 1);
      if (row < M && col < N) C[static_cast<size_t>(row) * N + col] = acc[nt][i];
    }
  }
}

// C[M][N] = A[M][K] x B[K][N]  (B row-major): B fragments through ldmatrix .trans.
template <class T>
__global__ void __launch_bounds__(128) matmul_nn_kernel(float* C, const T* A, const T* B, int M, int N, int K) {
  __shared__ __align__(16) T As[2][kTile][kTile + kPad];
  __shared__ __align__(16) T Bs[2][kTile][kTile + kPad];
  const int tid = thread_rank(), lane = lane_id(), warp = warp_id();
  const int wm = warp >> 1, wn = warp & 1;
  const int m0 = static_cast<int>(blockIdx.y) * kTile, n0 = static_cast<int>(blockIdx.x) * kTile;
  const int lrow = tid >> 2, lcol = (tid & 3) * 8;
  auto load = [&](int stage, int kt) {
    const int k = kt * kTile + lcol, kb = kt * kTile + lrow;
    const bool a_ok = m0 + lrow < M && k < K, b_ok = kb < K && n0 + lcol < N;
    cp_async_16_zfill(&As[stage][lrow][lcol], a_ok ? A + static_cast<size_t>(m0 + lrow) * K + k : A, a_ok ? 16 : 0);
    cp_async_16_zfill(&Bs[stage][lrow][lcol], b_ok ? B + static_cast<size_t>(kb) * N + n0 + lcol : B, b_ok ? 16 : 0);
  };
  float acc[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
  const int n_tiles = ceil_div(K, kTile);
  load(0, 0);
  cp_async_commit();
  for (int kt = 0; kt < n_tiles; kt++) {
    const int s = kt & 1;
    if (kt + 1 < n_tiles) load(s ^ 1, kt + 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    for (int kk = 0; kk < kTile; kk += 16) {
      uint32_t a[4], b[4];
      ldmatrix_x4(a, &As[s][wm * 16 + (lane & 15)][kk + (lane >> 4) * 8]);
      ldmatrix_x4_trans(b, &Bs[s][kk + (lane & 7) + ((lane >> 3) & 1) * 8][wn * 16 + (lane >> 4) * 8]);
      const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
      mma_t<T>(acc[0], a, b0);
      mma_t<T>(acc[1], a, b1);
    }
    __syncthreads();
  }
  const int g = lane >> 2, t = lane & 3;
  for (int nt = 0; nt < 2; nt++) {
    for (int i = 0; i < 4; i++) {
      const int row = m0 + wm * 16 + g + (i >= 2 ? 8 : 0), col = n0 + wn * 16 + nt * 8 + 2 * t + (i & 1);
      if (row < M && col < N) C[static_cast<size_t>(row) * N + col] = acc[nt][i];
    }
  }
}

// y[i] = 2 * x[i] for 16-byte vectors of bf16 (n a multiple of 8), through Packed128.
__global__ void packed_scale_kernel(__nv_bfloat16* y, const __nv_bfloat16* x, int n) {
  const int i = (static_cast<int>(blockIdx.x * blockDim.x) + thread_rank()) * bf16x8::size;
  if (i >= n) return;
  const bf16x8 in = load128cs(x + i);
  bf16x8 out;
  for (int k = 0; k < bf16x8::size; k++) out[k] = __float2bfloat16(2.0f * __bfloat162float(in[k]));
  store128(y + i, out);
}

// Decode-step stand-ins for the graph test: x = 0.5 * x + pos (pos read from device memory), then pos++.
__global__ void graph_step_kernel(float* x, const int* pos, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x) + thread_rank();
  if (i < n) x[i] = 0.5f * x[i] + static_cast<float>(*pos);
}
__global__ void increment_kernel(int* pos) {
  if (thread_rank() == 0) *pos += 1;
}
__global__ void no_argument_kernel() {}

// For --bench: scheduling points only.
__global__ void syncwarp_loop_kernel(int* out, int iters) {
  int v = 0;
  for (int i = 0; i < iters; i++) {
    __syncwarp();
    v += i;
  }
  out[blockIdx.x * blockDim.x + thread_rank()] = v;
}
__global__ void syncthreads_loop_kernel(int* out, int iters) {
  int v = 0;
  for (int i = 0; i < iters; i++) {
    __syncthreads();
    v += i;
  }
  out[blockIdx.x * blockDim.x + thread_rank()] = v;
}

// ---- faulty kernels: the emulator must report them --------------------------------------------
// Launched only in the emulator build; nvcc compiles them too (external linkage: no "unused" noise).
}  // namespace
namespace simt_faults {

// __syncthreads in divergent code: threads 16.. exit, threads 0..15 wait forever.
__global__ void divergent_barrier_kernel(float* out) {
  if (threadIdx.x < 16) __syncthreads();
  out[threadIdx.x] = 1.0f;
}
// A shuffle naming lanes that exited.
__global__ void exited_lanes_shuffle_kernel(int* out) {
  if (lane_id() < 8) return;
  out[thread_rank()] = __shfl_xor_sync(0xffffffffu, thread_rank(), 1);
}
// Two different __syncthreads for odd and even threads.
__global__ void mismatched_barrier_kernel(int* out) {
  if (threadIdx.x % 2) {
    __syncthreads();
    out[threadIdx.x] = 1;
  } else {
    __syncthreads();
    out[threadIdx.x] = 2;
  }
}
// A 16-byte load from an address that is only 4-byte aligned.
__global__ void misaligned_kernel(float* out, const float* in) {
  const f128 v = load128(in + 1);
  out[thread_rank()] = v[0];
}
// Reads the cp.async destination before waiting (stale in the emulator), then after.
__global__ void cp_async_order_kernel(float* before, float* after, const float* in) {
  __shared__ __align__(16) float buf[4 * 32];
  const int t = thread_rank();
  for (int i = 0; i < 4; i++) buf[4 * t + i] = -1.0f;
  __syncthreads();
  cp_async_16(&buf[4 * t], &in[4 * t]);
  cp_async_commit();
  before[t] = buf[4 * t];
  cp_async_wait<0>();
  __syncthreads();
  after[t] = buf[4 * t];
}
// mma in a block of 16 threads: the warp is not full.
__global__ void partial_warp_mma_kernel(float* out) {
  const uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
  float acc[4] = {0, 0, 0, 0};
  mma_m16n8k16_bf16(acc, a, b);
  out[thread_rank()] = acc[0];
}
// A shuffle whose source lane is outside the mask: all-ones bits in the emulator.
__global__ void outside_mask_shuffle_kernel(int* out) {
  const int lane = lane_id();
  const unsigned half = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  out[thread_rank()] = __shfl_sync(half, lane + 100, lane < 16 ? 20 : 3);
}

}  // namespace simt_faults
namespace {

// =================================================================================================
// Host side
// =================================================================================================

int g_failures = 0;

bool report(const char* name, bool ok, const std::string& evidence = "") {
  std::printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", name, evidence.empty() ? "" : ": ", evidence.c_str());
  if (!ok) g_failures++;
  return ok;
}

std::string fmt(const char* f, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c, d);
  return buf;
}

// |got - ref| <= atol + rtol * |ref|; evidence: first 5 mismatches, the worst index, the tolerance.
template <class G, class R>
bool check_close(const char* name, const G* got, const R* ref, size_t n, double atol, double rtol) {
  size_t bad = 0, worst = 0;
  double worst_err = -1;
  std::string ev;
  for (size_t i = 0; i < n; i++) {
    const double g = static_cast<double>(got[i]), r = static_cast<double>(ref[i]);
    const double err = std::fabs(g - r);
    const bool ok = err <= atol + rtol * std::fabs(r);
    if (!(err <= worst_err) || std::isnan(err)) {
      worst_err = std::isnan(err) ? INFINITY : err;
      worst = i;
    }
    if (!ok) {
      if (bad < 5) ev += fmt("[%.0f] got %.6g want %.6g; ", static_cast<double>(i), g, r);
      bad++;
    }
  }
  if (bad) {
    ev += fmt("%.0f of %.0f outside atol %g rtol %g", static_cast<double>(bad), static_cast<double>(n), atol, rtol);
    ev += fmt("; worst [%.0f] err %.3g", static_cast<double>(worst), worst_err);
  }
  return report(name, bad == 0, ev);
}

template <class T>
bool check_equal(const char* name, const T* got, const T* ref, size_t n) {
  size_t bad = 0;
  std::string ev;
  for (size_t i = 0; i < n; i++) {
    if (got[i] != ref[i]) {
      if (bad < 5) ev += fmt("[%.0f] got %.0f want %.0f; ", static_cast<double>(i), static_cast<double>(got[i]), static_cast<double>(ref[i]));
      bad++;
    }
  }
  if (bad) ev += fmt("%.0f of %.0f differ", static_cast<double>(bad), static_cast<double>(n));
  return report(name, bad == 0, ev);
}

bool check_cuda(const char* name, cudaError_t got, cudaError_t want) {
  return report(name, got == want,
                got == want ? "" : std::string("got ") + cudaGetErrorName(got) + ", want " + cudaGetErrorName(want));
}

// Device buffer with a host mirror.
template <class T>
struct Buf {
  std::vector<T> host;
  T* dev = nullptr;
  explicit Buf(size_t n, T fill = T()) : host(n, fill) {
    if (cudaMalloc(&dev, n * sizeof(T)) != cudaSuccess) {
      std::fprintf(stderr, "cudaMalloc failed\n");
      std::exit(2);
    }
    upload();
  }
  Buf(const Buf&) = delete;
  ~Buf() { cudaFree(dev); }
  void upload() { cudaMemcpy(dev, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice); }
  cudaError_t download() { return cudaMemcpy(host.data(), dev, host.size() * sizeof(T), cudaMemcpyDeviceToHost); }
  size_t size() const { return host.size(); }
};

std::mt19937 g_rng(1234);
float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(g_rng); }

// Launch + sync + download, returning the first error.
cudaError_t finish(cudaError_t launch_error) {
  if (launch_error != cudaSuccess) return launch_error;
  return cudaDeviceSynchronize();
}

// ---- checks -------------------------------------------------------------------------------------

void check_block_reduce() {
  const int n_per_block = 1237, blocks = 5;
  Buf<float> x(static_cast<size_t>(n_per_block) * blocks), sum(blocks), mx(blocks);
  for (auto& v : x.host) v = uniform(-1, 1);
  x.upload();
  const dim3 shapes[] = {dim3(128), dim3(32, 2, 2), dim3(1024), dim3(32), dim3(96)};
  for (const dim3& block : shapes) {
    LC_LAUNCH(block_sum_kernel, blocks, block, 0, 0, sum.dev, mx.dev, x.dev, n_per_block);
    cudaError_t e = finish(cudaGetLastError());
    sum.download();
    mx.download();
    std::vector<double> rs(blocks), rm(blocks);
    for (int b = 0; b < blocks; b++) {
      double s = 0, m = -INFINITY;
      for (int i = 0; i < n_per_block; i++) {
        s += x.host[static_cast<size_t>(b) * n_per_block + i];
        m = std::fmax(m, x.host[static_cast<size_t>(b) * n_per_block + i]);
      }
      rs[b] = s;
      rm[b] = m;
    }
    const std::string name = "block_reduce_sum/max, block (" + std::to_string(block.x) + "," +
                             std::to_string(block.y) + "," + std::to_string(block.z) + ")";
    if (!report((name + " launch").c_str(), e == cudaSuccess, cudaGetErrorString(e))) continue;
    check_close((name + " sum").c_str(), sum.host.data(), rs.data(), blocks, 1e-4, 1e-5);
    check_close((name + " max").c_str(), mx.host.data(), rm.data(), blocks, 0, 0);
  }
}

// CUDA programming guide semantics of each shuffle (written independently of the emulator's PTX
// formulas), for lane `lane` with values v(lane).
int shuffle_ref(int mode, int arg, int width, int lane, int warp) {
  auto v = [&](int l) { return 1000 * warp + l + 1; };
  const int base = (lane / width) * width;
  switch (mode) {
    case 0: return v(base + (arg & (width - 1)));
    case 1: return (lane - base) >= arg ? v(lane - arg) : v(lane);
    case 2: return (lane - base) + arg < width ? v(lane + arg) : v(lane);
    default: {
      const int src = lane ^ arg;
      return src < base + width ? v(src) : v(lane);  // earlier groups yes, later groups no
    }
  }
}

void check_shuffles() {
  std::vector<int> cases;
  for (int width : {32, 16, 8, 4, 2, 1}) {
    for (int arg : {0, 1, 3, 5, 7, 13, 31}) {
      for (int mode = 0; mode < 4; mode++) {
        cases.insert(cases.end(), {mode, arg, width});
      }
    }
  }
  cases.insert(cases.end(), {0, 37, 32, 0, 45, 8});  // srcLane beyond the width: taken modulo
  const int n_cases = static_cast<int>(cases.size() / 3), nt = 64;
  Buf<int> d_cases(cases.size()), out(static_cast<size_t>(n_cases) * nt);
  Buf<long long> out64(nt);
  Buf<float> outbf(nt);
  d_cases.host = cases;
  d_cases.upload();
  LC_LAUNCH(shuffle_kernel, 1, nt, 0, 0, out.dev, out64.dev, outbf.dev, d_cases.dev, n_cases);
  const cudaError_t e = finish(cudaGetLastError());
  if (!report("shuffle kernel launch", e == cudaSuccess, cudaGetErrorString(e))) return;
  out.download();
  out64.download();
  outbf.download();
  std::vector<int> ref(out.size());
  for (int c = 0; c < n_cases; c++) {
    for (int t = 0; t < nt; t++) ref[c * nt + t] = shuffle_ref(cases[3 * c], cases[3 * c + 1], cases[3 * c + 2], t % 32, t / 32);
  }
  check_equal("__shfl_sync/_up/_down/_xor, widths 32..1, 2 warps", out.host.data(), ref.data(), ref.size());
  std::vector<long long> r64(nt);
  std::vector<float> rbf(nt);
  for (int t = 0; t < nt; t++) {
    const long long v = 1000 * (t / 32) + ((t % 32) ^ 5) + 1;
    r64[t] = (v << 33) + v;
    const int lane = t % 32, base = lane / 8 * 8;
    rbf[t] = static_cast<float>(1000 * (t / 32) + ((lane - base) + 3 < 8 ? lane + 3 : lane) + 1);
  }
  check_equal("__shfl_xor_sync on 64-bit values", out64.host.data(), r64.data(), r64.size());
  check_close("__shfl_down_sync on bf16, width 8", outbf.host.data(), rbf.data(), rbf.size(), 0, 1.0 / 128);
}

void check_partial_warp() {
  const int nt = 48;
  Buf<int> sums(nt), xors(nt);
  Buf<unsigned> ballots(nt);
  LC_LAUNCH(partial_warp_kernel, 1, nt, 0, 0, sums.dev, xors.dev, ballots.dev);
  const cudaError_t e = finish(cudaGetLastError());
  if (!report("partial warp kernel launch (48 threads)", e == cudaSuccess, cudaGetErrorString(e))) return;
  sums.download();
  xors.download();
  ballots.download();
  // lane 0 of each warp holds the sum of the values of its existing lanes
  const int want0 = (32 * 33) / 2, want1 = ((33 + 48) * 16) / 2;
  report("masked shfl_down reduction over existing lanes",
         sums.host[0] == want0 && sums.host[32] == want1,
         fmt("warp 0: %.0f (want %.0f), warp 1: %.0f (want %.0f)", sums.host[0], want0, sums.host[32], want1));
  std::vector<int> rx(32);
  std::vector<unsigned> rb(32);
  for (int l = 0; l < 32; l++) {
    rx[l] = (l ^ 3) + 1;
    unsigned b = 0;
    const int base = l < 16 ? 0 : 16;
    for (int k = base; k < base + 16; k++) {
      if ((k + 1) % 3 == 0) b |= 1u << k;
    }
    rb[l] = b;
  }
  check_equal("two 16-lane groups in one warp: __shfl_xor_sync", xors.host.data(), rx.data(), 32);
  check_equal("two 16-lane groups in one warp: __ballot_sync", ballots.host.data(), rb.data(), 32);
}

void check_votes() {
  const int nt = 96, blocks = 3;
  Buf<unsigned> out(static_cast<size_t>(nt) * blocks * 9);
  LC_LAUNCH(vote_kernel, blocks, nt, 0, 0, out.dev);
  const cudaError_t e = finish(cudaGetLastError());
  if (!report("vote kernel launch", e == cudaSuccess, cudaGetErrorString(e))) return;
  out.download();
  std::vector<unsigned> ref(out.size());
  for (int b = 0; b < blocks; b++) {
    auto pred = [&](int t) { return (t * 7 + b) % 5 == 0; };
    int count = 0;
    for (int t = 0; t < nt; t++) count += pred(t);
    for (int t = 0; t < nt; t++) {
      const int w = t / 32;
      unsigned ballot = 0, add = 0;
      int mx = -1;
      for (int l = 0; l < 32; l++) {
        if (pred(w * 32 + l)) ballot |= 1u << l;
        add += static_cast<unsigned>(w * 32 + l);
        mx = std::max(mx, ((w * 32 + l) * 37) % 101);
      }
      unsigned* r = &ref[(static_cast<size_t>(b) * nt + t) * 9];
      r[0] = ballot;
      r[1] = ballot != 0;
      r[2] = 1;
      r[3] = ballot == 0xffffffffu;
      r[4] = static_cast<unsigned>(count);
      r[5] = 1;
      r[6] = 1;
      r[7] = add;
      r[8] = static_cast<unsigned>(mx);
    }
  }
  check_equal("ballot/any/all, __syncthreads_count/and/or, __reduce_add/max_sync", out.host.data(), ref.data(), ref.size());
}

void check_dynamic_smem() {
  const int n = 16 * 1024 + 7, blocks = 3;  // 64 KiB + 28 bytes of shared memory: needs the opt-in
  const size_t smem = n * sizeof(float);
  Buf<float> in(static_cast<size_t>(n) * blocks), out(static_cast<size_t>(n) * blocks, 0.0f);
  for (size_t i = 0; i < in.size(); i++) in.host[i] = static_cast<float>(i);
  in.upload();
  LC_LAUNCH(reverse_kernel, blocks, 256, smem, 0, out.dev, in.dev, n);
  check_cuda("dynamic smem above 48 KiB without the attribute is refused", cudaGetLastError(), cudaErrorInvalidValue);
  check_cuda("cudaFuncSetAttribute(MaxDynamicSharedMemorySize)",
             cudaFuncSetAttribute(reverse_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
             cudaSuccess);
  LC_LAUNCH(reverse_kernel, blocks, 256, smem, 0, out.dev, in.dev, n);
  const cudaError_t e = finish(cudaGetLastError());
  if (!report("LC_DYNAMIC_SMEM launch with 64 KiB", e == cudaSuccess, cudaGetErrorString(e))) return;
  out.download();
  std::vector<float> ref(out.size());
  for (int b = 0; b < blocks; b++) {
    for (int i = 0; i < n; i++) ref[static_cast<size_t>(b) * n + i] = in.host[static_cast<size_t>(b) * n + (n - 1 - i)];
  }
  check_equal("LC_DYNAMIC_SMEM reversal", out.host.data(), ref.data(), ref.size());
}

void check_atomics() {
  const int n = 10007;
  Buf<int> data(n), hist(16, 0), mx(1, -1);
  Buf<float> count(1, 0.0f);
  Buf<unsigned> cas(1, 0u);
  std::vector<int> rh(16, 0);
  int rmax = -1;
  for (int i = 0; i < n; i++) {
    data.host[i] = (i * 7919) % 100003;
    rh[data.host[i] & 15]++;
    rmax = std::max(rmax, data.host[i]);
  }
  data.upload();
  const int blocks = 7, nt = 96;
  LC_LAUNCH(atomics_kernel, blocks, nt, 0, 0, hist.dev, mx.dev, count.dev, cas.dev, data.dev, n);
  const cudaError_t e = finish(cudaGetLastError());
  if (!report("atomics kernel launch", e == cudaSuccess, cudaGetErrorString(e))) return;
  hist.download();
  mx.download();
  count.download();
  cas.download();
  check_equal("atomicAdd(int) histogram", hist.host.data(), rh.data(), 16);
  report("atomicMax(int)", mx.host[0] == rmax, fmt("got %.0f want %.0f", mx.host[0], rmax));
  report("atomicAdd(float) in shared + global", count.host[0] == static_cast<float>(n), fmt("got %.0f want %.0f", count.host[0], n));
  report("atomicCAS loop", cas.host[0] == static_cast<unsigned>(blocks * nt), fmt("got %.0f want %.0f", cas.host[0], blocks * nt));
}

void check_grid_stride_and_indices() {
  const long long n = 100003;
  Buf<float> x(n, 1.0f), y(n);
  for (long long i = 0; i < n; i++) y.host[i] = static_cast<float>(i % 1000);
  y.upload();
  LC_LAUNCH(grid_stride_kernel, dim3(7, 3), dim3(8, 4, 3), 0, 0, y.dev, x.dev, 2.5f, n);
  cudaError_t e = finish(cudaGetLastError());
  if (report("grid-stride launch, grid (7,3), block (8,4,3)", e == cudaSuccess, cudaGetErrorString(e))) {
    y.download();
    std::vector<float> ref(n);
    for (long long i = 0; i < n; i++) ref[i] = 2.5f + static_cast<float>(i % 1000);
    check_equal("grid-stride loop over 100003 elements (each exactly once)", y.host.data(), ref.data(), ref.size());
  }
  const dim3 grid(3, 2, 2), block(5, 3, 2);
  const size_t total = 12 * 30;
  Buf<unsigned> idx(total, 0xffffffffu);
  LC_LAUNCH(index_kernel, grid, block, 0, 0, idx.dev);
  e = finish(cudaGetLastError());
  if (!report("index kernel launch, grid (3,2,2), block (5,3,2)", e == cudaSuccess, cudaGetErrorString(e))) return;
  idx.download();
  std::vector<unsigned> ref(total);
  for (unsigned bz = 0; bz < 2; bz++)
    for (unsigned by = 0; by < 2; by++)
      for (unsigned bx = 0; bx < 3; bx++)
        for (unsigned tz = 0; tz < 2; tz++)
          for (unsigned ty = 0; ty < 3; ty++)
            for (unsigned tx = 0; tx < 5; tx++) {
              const unsigned b = bx + 3 * (by + 2 * bz), t = tx + 5 * (ty + 3 * tz);
              ref[b * 30 + t] = tx | (ty << 4) | (tz << 8) | (bx << 12) | (by << 16) | (bz << 20);
            }
  check_equal("threadIdx/blockIdx/blockDim/gridDim in 3D", idx.host.data(), ref.data(), total);
}

template <class T>
T to_half_type(float v);
template <>
__nv_bfloat16 to_half_type<__nv_bfloat16>(float v) { return __float2bfloat16(v); }
template <>
__half to_half_type<__half>(float v) { return __float2half(v); }
float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
float to_float(__half v) { return __half2float(v); }

template <class T>
void check_mma_fragments(const char* name) {
  Buf<T> A(256), B(128);
  Buf<float> C(128), D(128, 0.0f);
  // position-encoded inputs: a wrong fragment index gives a wrong number, not a slightly-off one
  for (int i = 0; i < 256; i++) A.host[i] = to_half_type<T>(static_cast<float>((i % 16) - (i / 16) % 5));
  for (int i = 0; i < 128; i++) B.host[i] = to_half_type<T>(static_cast<float>(((i * 3) % 7) - 3));
  for (int i = 0; i < 128; i++) C.host[i] = static_cast<float>(i) * 0.25f;
  A.upload();
  B.upload();
  C.upload();
  LC_LAUNCH((mma_fragment_kernel<T>), 1, 32, 0, 0, D.dev, A.dev, B.dev, C.dev);
  const cudaError_t e = finish(cudaGetLastError());
  if (!report((std::string(name) + " launch").c_str(), e == cudaSuccess, cudaGetErrorString(e))) return;
  D.download();
  std::vector<double> ref(128);
  for (int m = 0; m < 16; m++) {
    for (int n = 0; n < 8; n++) {
      double s = C.host[m * 8 + n];
      for (int k = 0; k < 16; k++) s += static_cast<double>(to_float(A.host[m * 16 + k])) * to_float(B.host[k * 8 + n]);
      ref[m * 8 + n] = s;
    }
  }
  check_close(name, D.host.data(), ref.data(), 128, 0, 0);
}

void check_ldmatrix() {
  Buf<uint16_t> src(256);
  Buf<uint32_t> out(6 * 128, 0u);
  for (int i = 0; i < 256; i++) src.host[i] = static_cast<uint16_t>(i);  // matrix m, row r, col c -> m*64 + r*8 + c
  src.upload();
  LC_LAUNCH(ldmatrix_kernel, 1, 32, 0, 0, out.dev, src.dev);
  const cudaError_t e = finish(cudaGetLastError());
  if (!report("ldmatrix kernel launch", e == cudaSuccess, cudaGetErrorString(e))) return;
  out.download();
  std::vector<uint32_t> ref(6 * 128, 0u);
  auto el = [](int m, int r, int c) { return static_cast<uint32_t>(m * 64 + r * 8 + c); };
  for (int l = 0; l < 32; l++) {
    const int g = l / 4, t = l % 4;
    for (int m = 0; m < 4; m++) {
      const uint32_t plain = el(m, g, 2 * t) | (el(m, g, 2 * t + 1) << 16);
      const uint32_t trans = el(m, 2 * t, g) | (el(m, 2 * t + 1, g) << 16);
      ref[0 * 128 + l * 4 + m] = plain;
      ref[1 * 128 + l * 4 + m] = trans;
      if (m < 2) ref[2 * 128 + l * 4 + m] = plain;
      if (m < 2) ref[3 * 128 + l * 4 + m] = trans;
      if (m < 1) ref[4 * 128 + l * 4 + m] = plain;
      if (m < 1) ref[5 * 128 + l * 4 + m] = trans;
    }
  }
  check_equal("ldmatrix x4/x2/x1 and .trans fragments", out.host.data(), ref.data(), ref.size());
}

template <class T>
double run_matmul(const char* name, bool nn, int M, int N, int K, bool check) {
  Buf<T> A(static_cast<size_t>(M) * K), B(static_cast<size_t>(N) * K);
  Buf<float> C(static_cast<size_t>(M) * N, 0.0f);
  for (auto& v : A.host) v = to_half_type<T>(uniform(-1, 1));
  for (auto& v : B.host) v = to_half_type<T>(uniform(-1, 1));
  A.upload();
  B.upload();
  const dim3 grid(ceil_div(N, kTile), ceil_div(M, kTile));
  const auto t0 = std::chrono::steady_clock::now();
  if (nn) {
    LC_LAUNCH((matmul_nn_kernel<T>), grid, 128, 0, 0, C.dev, A.dev, B.dev, M, N, K);
  } else {
    LC_LAUNCH((matmul_nt_kernel<T>), grid, 128, 0, 0, C.dev, A.dev, B.dev, M, N, K);
  }
  const cudaError_t e = finish(cudaGetLastError());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!check) return ms;
  if (!report((std::string(name) + " launch").c_str(), e == cudaSuccess, cudaGetErrorString(e))) return ms;
  C.download();
  std::vector<double> ref(C.size());
  for (int m = 0; m < M; m++) {
    for (int n = 0; n < N; n++) {
      double s = 0;
      for (int k = 0; k < K; k++) {
        const float b = nn ? to_float(B.host[static_cast<size_t>(k) * N + n]) : to_float(B.host[static_cast<size_t>(n) * K + k]);
        s += static_cast<double>(to_float(A.host[static_cast<size_t>(m) * K + k])) * b;
      }
      ref[static_cast<size_t>(m) * N + n] = s;
    }
  }
  check_close(name, C.host.data(), ref.data(), ref.size(), 1e-3, 1e-3);
  return ms;
}

void check_packed128() {
  const int n = 8 * 37;
  Buf<__nv_bfloat16> x(n), y(n);
  for (int i = 0; i < n; i++) x.host[i] = __float2bfloat16(static_cast<float>(i % 97) - 40.0f);
  x.upload();
  LC_LAUNCH(packed_scale_kernel, 2, 32, 0, 0, y.dev, x.dev, n);
  const cudaError_t e = finish(cudaGetLastError());
  if (!report("Packed128 kernel launch", e == cudaSuccess, cudaGetErrorString(e))) return;
  y.download();
  std::vector<float> got(n), ref(n);
  for (int i = 0; i < n; i++) {
    got[i] = __bfloat162float(y.host[i]);
    ref[i] = 2.0f * (static_cast<float>(i % 97) - 40.0f);
  }
  check_equal("load128cs/store128 of bf16x8", got.data(), ref.data(), n);
}

void check_launch_errors() {
  Buf<int> out(64, 0);
  struct Case {
    const char* name;
    dim3 grid, block;
  };
  const Case cases[] = {
      {"block of 1025 threads", dim3(1), dim3(1025)},
      {"block of 32x32x2 threads", dim3(1), dim3(32, 32, 2)},
      {"block.z = 65", dim3(1), dim3(1, 1, 65)},
      {"block.x = 0", dim3(1), dim3(0)},
      {"grid.y = 65536", dim3(1, 65536), dim3(32)},
      {"grid.x = 0", dim3(0), dim3(32)},
  };
  for (const Case& c : cases) {
    LC_LAUNCH(increment_kernel, c.grid, c.block, 0, 0, out.dev);
    check_cuda((std::string("bad launch: ") + c.name + " -> cudaErrorInvalidConfiguration").c_str(), cudaGetLastError(),
               cudaErrorInvalidConfiguration);
  }
  LC_LAUNCH(increment_kernel, 1, 32, 48 * 1024 + 4, 0, out.dev);
  check_cuda("bad launch: 48 KiB + 4 dynamic smem without opt-in -> cudaErrorInvalidValue", cudaGetLastError(),
             cudaErrorInvalidValue);
  check_cuda("launch errors are not sticky: cudaGetLastError() is clear after reading", cudaGetLastError(), cudaSuccess);
  LC_LAUNCH(increment_kernel, 1, 32, 0, 0, out.dev);
  check_cuda("a good launch after bad ones", finish(cudaGetLastError()), cudaSuccess);
  LC_LAUNCH(no_argument_kernel, 2, 64, 0, 0);
  check_cuda("LC_LAUNCH of a kernel without arguments", finish(cudaGetLastError()), cudaSuccess);
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  check_cuda("cudaFuncSetAttribute above sharedMemPerBlockOptin -> cudaErrorInvalidValue",
             cudaFuncSetAttribute(increment_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(prop.sharedMemPerBlockOptin) + 1),
             cudaErrorInvalidValue);
  (void)cudaGetLastError();
  report("device properties: compute capability >= 8.0, warp 32, 1024 threads",
         prop.major >= 8 && prop.warpSize == 32 && prop.maxThreadsPerBlock == 1024,
         fmt("%.0f.%.0f", prop.major, prop.minor));
}

Status alloc_status(void** p, size_t bytes) {
  CUDA_TRY(cudaMalloc(p, bytes));
  return Status::Ok();
}

void check_memory() {
#if LC_SIMT
  const size_t too_much = 100u << 20;  // LLAMA_CUDA_SIMT_MEMORY is 64 MiB in this program
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  report("cudaMemGetInfo reports the LLAMA_CUDA_SIMT_MEMORY cap", total_b == (64u << 20), fmt("total %.0f", total_b));
#else
  const size_t too_much = 1ull << 50;
#endif
  void* p = nullptr;
  check_cuda("cudaMalloc beyond the device memory -> cudaErrorMemoryAllocation", cudaMalloc(&p, too_much),
             cudaErrorMemoryAllocation);
  check_cuda("... cudaGetLastError() returns it once", cudaGetLastError(), cudaErrorMemoryAllocation);
  check_cuda("... and it is not sticky", cudaGetLastError(), cudaSuccess);
  const Status st = alloc_status(&p, too_much);
  report("CUDA_TRY maps cudaErrorMemoryAllocation to Code::OutOfMemory",
         st.code == Code::OutOfMemory && st.message.find("cudaErrorMemoryAllocation") != std::string::npos, st.message);
  check_cuda("... and consumes the last error", cudaGetLastError(), cudaSuccess);
  void* q = nullptr;
  check_cuda("cudaMalloc(16 MiB) still works", cudaMalloc(&q, 16u << 20), cudaSuccess);
  report("cudaMalloc returns 256-byte aligned pointers", (reinterpret_cast<uintptr_t>(q) & 255u) == 0);
#if LC_SIMT
  check_cuda("cudaMemcpy device-to-host from a host pointer -> cudaErrorInvalidValue",
             cudaMemcpy(&free_b, &total_b, sizeof free_b, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  (void)cudaGetLastError();
#endif
  cudaFree(q);
}

void check_graph() {
  const int n = 1000;
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  Buf<float> x(n);
  Buf<int> pos(1, 3);
  for (int i = 0; i < n; i++) x.host[i] = static_cast<float>(i);
  x.upload();
  float* pinned = nullptr;
  cudaMallocHost(reinterpret_cast<void**>(&pinned), n * sizeof(float));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  check_cuda("cudaStreamBeginCapture", cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  LC_LAUNCH(graph_step_kernel, ceil_div(n, 128), 128, 0, stream, x.dev, pos.dev, n);
  LC_LAUNCH(increment_kernel, 1, 32, 0, stream, pos.dev);
  cudaMemcpyAsync(pinned, x.dev, n * sizeof(float), cudaMemcpyDeviceToHost, stream);
  check_cuda("captured launches report no error", cudaGetLastError(), cudaSuccess);
  check_cuda("cudaStreamEndCapture", cudaStreamEndCapture(stream, &graph), cudaSuccess);
  size_t nodes = 0;
  cudaGraphGetNodes(graph, nullptr, &nodes);
  report("the graph has 3 nodes (2 kernels, 1 copy)", nodes == 3, fmt("%.0f nodes", nodes));
  x.download();
  report("capture does not run the work", x.host[5] == 5.0f, fmt("x[5] = %g", x.host[5]));
  check_cuda("cudaGraphInstantiate", cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  std::vector<float> ref(n);
  for (int i = 0; i < n; i++) ref[i] = static_cast<float>(i);
  int rpos = 3;
  bool ok = true;
  for (int step = 0; step < 3; step++) {
    ok = ok && cudaGraphLaunch(exec, stream) == cudaSuccess;
    ok = ok && cudaStreamSynchronize(stream) == cudaSuccess;
    for (int i = 0; i < n; i++) ref[i] = 0.5f * ref[i] + static_cast<float>(rpos);
    rpos++;
    if (!ok) break;
  }
  report("three graph replays run", ok, cudaGetErrorString(cudaGetLastError()));
  check_equal("graph replays: pinned copy of x after 3 steps", pinned, ref.data(), n);
  pos.download();
  report("graph replays: device position advanced by 3", pos.host[0] == 6, fmt("pos %.0f", pos.host[0]));
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
#if LC_SIMT
  // A synchronous call during capture is refused and spoils the capture, as on a GPU.
  cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal);
  LC_LAUNCH(increment_kernel, 1, 32, 0, stream, pos.dev);
  const cudaError_t sync = cudaMemcpy(pos.host.data(), pos.dev, sizeof(int), cudaMemcpyDeviceToHost);
  report("cudaMemcpy while capturing is refused", sync != cudaSuccess, cudaGetErrorName(sync));
  check_cuda("... and the capture ends invalidated", cudaStreamEndCapture(stream, &graph), cudaErrorStreamCaptureInvalidated);
  (void)cudaGetLastError();
#endif
  cudaFreeHost(pinned);
  cudaStreamDestroy(stream);
}

void check_threads() {
  // Launches from several OS threads at once: the runtime serializes them.
  const int n_threads = 4, iters = 6, n = 4096;
  std::vector<int> ok(n_threads, 1);
  std::vector<std::thread> pool;
  for (int t = 0; t < n_threads; t++) {
    pool.emplace_back([&, t] {
      Buf<float> x(n), sum(1), mx(1);
      for (int i = 0; i < n; i++) x.host[i] = static_cast<float>((i * (t + 1)) % 17);
      x.upload();
      double want = 0;
      for (float v : x.host) want += v;
      for (int it = 0; it < iters; it++) {
        LC_LAUNCH(block_sum_kernel, 1, 256, 0, 0, sum.dev, mx.dev, x.dev, n);
        if (cudaGetLastError() != cudaSuccess || sum.download() != cudaSuccess || sum.host[0] != want) ok[t] = 0;
      }
    });
  }
  for (auto& th : pool) th.join();
  int good = 0;
  for (int v : ok) good += v;
  report("launches from 4 OS threads at once", good == n_threads, fmt("%.0f of %.0f threads correct", good, n_threads));
}

#if LC_SIMT
bool expect_fault(const char* name, cudaError_t want, std::initializer_list<const char*> needles) {
  const cudaError_t e = cudaGetLastError();
  const std::string text = cudaGetErrorString(e);
  bool ok = e == want;
  std::string missing;
  for (const char* s : needles) {
    if (text.find(s) == std::string::npos) {
      ok = false;
      missing += std::string(" '") + s + "'";
    }
  }
  const bool sticky = cudaDeviceSynchronize() == want;
  report(name, ok && sticky,
         ok && sticky ? "" : std::string(cudaGetErrorName(e)) + (sticky ? "" : " (not sticky)") +
                                 (missing.empty() ? "" : "; report lacks" + missing) + "; report: " + text);
  cudaDeviceReset();
  return ok;
}

void check_faults() {
  {
    Buf<float> out(64);
    LC_LAUNCH(simt_faults::divergent_barrier_kernel, 2, 64, 0, 0, out.dev);
  }
  expect_fault("deadlock: __syncthreads in divergent code is reported", cudaErrorLaunchFailure,
               {"deadlock", "divergent_barrier_kernel", "threads 0-15: waiting at __syncthreads", "threads 16-63: exited",
                "block (0,0,0)"});
  {
    Buf<int> out(32);
    LC_LAUNCH(simt_faults::exited_lanes_shuffle_kernel, 1, 32, 0, 0, out.dev);
  }
  expect_fault("deadlock: a shuffle naming exited lanes is reported", cudaErrorLaunchFailure,
               {"deadlock", "__shfl_xor_sync", "still waiting for lanes 0-7", "exited"});
  {
    Buf<int> out(64);
    LC_LAUNCH(simt_faults::mismatched_barrier_kernel, 1, 64, 0, 0, out.dev);
  }
  expect_fault("deadlock: threads at different __syncthreads are reported", cudaErrorLaunchFailure,
               {"deadlock", "different barriers"});
  {
    Buf<float> in(64), out(32);
    LC_LAUNCH(simt_faults::misaligned_kernel, 1, 32, 0, 0, out.dev, in.dev);
  }
  expect_fault("misaligned 16-byte load -> cudaErrorMisalignedAddress", cudaErrorMisalignedAddress,
               {"load128", "not 16-byte aligned"});
  {
    Buf<float> out(16);
    LC_LAUNCH(simt_faults::partial_warp_mma_kernel, 1, 16, 0, 0, out.dev);
  }
  expect_fault("mma in a partial warp is reported", cudaErrorLaunchFailure, {"needs all 32 lanes"});
  check_cuda("after cudaDeviceReset the device works again", cudaDeviceSynchronize(), cudaSuccess);
  {
    Buf<float> in(128), before(32), after(32);
    for (int i = 0; i < 128; i++) in.host[i] = static_cast<float>(i + 1);
    in.upload();
    LC_LAUNCH(simt_faults::cp_async_order_kernel, 1, 32, 0, 0, before.dev, after.dev, in.dev);
    const cudaError_t e = finish(cudaGetLastError());
    before.download();
    after.download();
    bool stale = true, done = true;
    for (int t = 0; t < 32; t++) {
      stale = stale && before.host[t] == -1.0f;
      done = done && after.host[t] == static_cast<float>(4 * t + 1);
    }
    report("cp.async lands at the wait, not before (emulator)", e == cudaSuccess && stale && done,
           fmt("before[0] %g after[0] %g", before.host[0], after.host[0]));
  }
  {
    Buf<int> out(32);
    LC_LAUNCH(simt_faults::outside_mask_shuffle_kernel, 1, 32, 0, 0, out.dev);
    const cudaError_t e = finish(cudaGetLastError());
    out.download();
    report("a shuffle from a lane outside the mask reads all-ones bits (emulator)", e == cudaSuccess && out.host[0] == -1 && out.host[31] == -1,
           fmt("lane 0: %.0f, lane 31: %.0f", out.host[0], out.host[31]));
  }
  {
    float* p = nullptr;
    cudaMalloc(&p, 64);
    float v = 0;
    cudaMemcpy(&v, p, sizeof v, cudaMemcpyDeviceToHost);
    report("fresh device memory reads as NaN (emulator poison)", std::isnan(v));
    cudaFree(p);
  }
}
#endif

void bench() {
#if LC_SIMT
  lc_simt::reset_stats();
#endif
  {
    const int blocks = 8, nt = 1024, iters = 200;
    Buf<int> out(static_cast<size_t>(blocks) * nt);
    for (int which = 0; which < 2; which++) {
#if LC_SIMT
      lc_simt::reset_stats();
#endif
      const auto t0 = std::chrono::steady_clock::now();
      if (which == 0) {
        LC_LAUNCH(syncwarp_loop_kernel, blocks, nt, 0, 0, out.dev, iters);
      } else {
        LC_LAUNCH(syncthreads_loop_kernel, blocks, nt, 0, 0, out.dev, iters);
      }
      finish(cudaGetLastError());
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
#if LC_SIMT
      const lc_simt::Stats st = lc_simt::stats();
      std::printf("bench %-12s %d blocks x %d threads x %d iterations: %.3f s, %.1f M fiber switches/s (%.1f ns each), %llu switches\n",
                  which == 0 ? "__syncwarp" : "__syncthreads", blocks, nt, iters, s,
                  static_cast<double>(st.switches) / s / 1e6, s * 1e9 / static_cast<double>(st.switches),
                  static_cast<unsigned long long>(st.switches));
#else
      std::printf("bench %-12s %d blocks x %d threads x %d iterations: %.3f ms\n", which == 0 ? "__syncwarp" : "__syncthreads",
                  blocks, nt, iters, s * 1e3);
#endif
    }
  }
  for (int size : {64, 128, 256}) {
#if LC_SIMT
    lc_simt::reset_stats();
#endif
    const double ms = run_matmul<__nv_bfloat16>("", false, size, size, size, false);
    const double mmas = static_cast<double>(size / 16) * (size / 8) * (size / 16);
#if LC_SIMT
    const lc_simt::Stats st = lc_simt::stats();
    std::printf("bench mma matmul %dx%dx%d bf16: %.1f ms (%.0f mma, %.2f us per mma incl. ldmatrix/cp.async; %llu switches, %llu warp ops)\n",
                size, size, size, ms, mmas, ms * 1e3 / mmas, static_cast<unsigned long long>(st.switches),
                static_cast<unsigned long long>(st.warp_ops));
#else
    std::printf("bench mma matmul %dx%dx%d bf16: %.3f ms\n", size, size, size, ms);
#endif
  }
  {
    const long long n = 4 << 20;
    Buf<float> x(n, 1.0f), y(n, 0.0f);
    const auto t0 = std::chrono::steady_clock::now();
    LC_LAUNCH(grid_stride_kernel, dim3(static_cast<unsigned>(n / 256)), 256, 0, 0, y.dev, x.dev, 2.0f, n);
    finish(cudaGetLastError());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("bench elementwise y = a*x + y over 4M floats, 16384 blocks x 256 threads: %.1f ms (%.0f ns per thread)\n",
                ms, ms * 1e6 / static_cast<double>(n));
  }
  {
    const int n = 1 << 20;
    Buf<float> x(n, 1.0f), sum(1), mx(1);
    const auto t0 = std::chrono::steady_clock::now();
    LC_LAUNCH(block_sum_kernel, 1, 1024, 0, 0, sum.dev, mx.dev, x.dev, n);
    finish(cudaGetLastError());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("bench block_reduce_sum of 1M floats, one 1024-thread block: %.1f ms\n", ms);
  }
}

}  // namespace
}  // namespace lc

int main(int argc, char** argv) {
  using namespace lc;
#if LC_SIMT
  setenv("LLAMA_CUDA_SIMT_MEMORY", "64M", 1);  // read at the first runtime call
#endif
  const bool do_bench = argc > 1 && std::strcmp(argv[1], "--bench") == 0;
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    std::printf("no CUDA device: %s\n", cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  std::printf("simt_check on %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  if (do_bench) {
    bench();
    return 0;
  }
  check_block_reduce();
  check_shuffles();
  check_partial_warp();
  check_votes();
  check_dynamic_smem();
  check_atomics();
  check_grid_stride_and_indices();
  check_mma_fragments<__nv_bfloat16>("mma_m16n8k16_bf16 fragments (PTX ISA layout)");
  check_mma_fragments<__half>("mma_m16n8k16_f16 fragments (PTX ISA layout)");
  check_ldmatrix();
  run_matmul<__nv_bfloat16>("matmul NT bf16 (cp.async + ldmatrix + mma), 77x45x72", false, 77, 45, 72, true);
  run_matmul<__half>("matmul NN f16 (cp.async + ldmatrix.trans + mma), 50x40x88", true, 50, 40, 88, true);
  run_matmul<__nv_bfloat16>("matmul NT bf16 64x64x64", false, 64, 64, 64, true);
  check_packed128();
  check_launch_errors();
  check_memory();
  check_graph();
  check_threads();
#if LC_SIMT
  check_faults();
  report("no device memory leaked", lc_simt::allocated_bytes() == 0, fmt("%.0f bytes", lc_simt::allocated_bytes()));
#endif
  std::printf("%s: %d failed\n", g_failures ? "FAILED" : "PASSED", g_failures);
  return g_failures ? 1 : 0;
}
