// Decode matrix-vector products: out[n][rows] = x[n][cols] . W^T for n = 1..8 activation rows,
// every weight dtype of native/core/dtype.h. Called by matmul_cuda (matmul.cu) when n <= 8; the
// CPU twin is matmul_cpu (native/cpu/ops/matmul_cpu.cc), checked by native/tests/cuda_check_matmul.cu.
//
// Layouts: x f32 row-major [n][cols] (row i at x + i * cols); out f32 [n][rows]; W as dtype.h:
//   F32/F16/BF16 row-major; Q8_0 planar (int8 codes [rows][cols], then f16 scales [rows][cols/32]);
//   INT4 planar (codes [rows][cols/2], byte j of a group = weight j (low nibble) and j + G/2
//   (high nibble); then {f16 scale, f16 min} [rows][cols/G]; w = q * scale + min);
//   NF4 planar (the INT4 code layout with G = 64, then f32 absmax [rows][cols/64];
//   w = table[q] * scale with the 16-entry NF4 table of core/nf4.h).
//
// Design (memory-bound: every weight byte is read exactly once, in 16-byte loads):
//   - A weight row is a sequence of 16-byte chunks: 4 f32, 8 f16/bf16, 16 q8_0 codes (half a
//     scale group) or 32 int4 weights (16 code bytes inside one group: columns lo..lo+15 in the
//     low nibbles and lo+G/2..lo+G/2+15 in the high nibbles). A chunk never straddles a group.
//   - Block = 4 warps (128 threads); each warp owns R consecutive rows (R = 4 for n <= 2, 2 for
//     n <= 8), its 32 lanes stride over the chunks (lane l: chunks l, l+32, ...: each warp load
//     instruction reads 512 contiguous bytes of a row), two chunks per row in flight per lane.
//   - Weights are dequantized in registers; x (f32) comes through the read-only cache (16-byte
//     loads), loaded once per chunk and reused for the R rows of the warp. Everything accumulates
//     in f32. Quantized codes q are decoded exactly to f32 by the 2^23 magic-number trick (one
//     PRMT + one FADD) and summed as sum(q x) per chunk; the group parameters are applied once per
//     chunk: Q8_0 acc += scale * sum(q x); INT4 acc += scale * sum(q x) + min * sum(x), with
//     sum(x) shared by the R rows (about 3.3 instructions per int4 weight at n = 1).
//     NF4 is the INT4 walk with the affine map replaced by a 16-entry lookup: the block copies
//     the table into shared memory once, codes index it (16 entries in 16 banks: no conflicts),
//     and acc += scale * sum(table[q] x) once per chunk (no min term).
//   - Lanes reduce with shuffles (no shared memory, no barriers).
//   - Split-K when rows are few relative to the SMs (less than 24 KB of weight loads in flight
//     per SM, i.e. fewer than 6 warps per SM at R = 4, 12 at R = 2): gridDim.y
//     slices of the chunk range write partials [split][n][rows] into the workspace and a second
//     kernel sums them in split order (deterministic; no atomics, so CUDA-graph replays repeat).
//   - Fallback for F32/F16/BF16 rows that are not 16-byte aligned (cols not a multiple of 4/8)
//     or pointers not 16-byte aligned: a scalar warp-per-row kernel (correct, slower).
// Bounds: any rows >= 1 (rows past the end of the last warp are clamped for loads and not
// stored), cols as dtype.h requires (Q8_0: multiple of 32; INT4: multiple of G). The vector
// path needs x and W 16-byte aligned (the backend allocates 256-byte aligned buffers and cols is
// a multiple of 4 for every vector-path dtype, so every x row stays aligned).
//
// To measure on a GPU (bench/kernels/matmul): matvec.{int4,q8_0,bf16,f16}.{4096x4096,
// 11008x4096, 4096x11008, 32000x4096} at n = 1, 2, 4, 8 as GB/s against the measured device
// bandwidth; the split-K choice on H100/H200 for 1024- and 4096-row weights
// (kTargetInflightBytesPerSm, kMinChunksPerSplit: the reduce is a second launch); ALU
// issue rate of the int4 kernel at n = 1 (it may become issue-bound on H200); R = 4 vs 2 rows
// per warp; L1 traffic of x at n = 8 (there a tensor-core path with n padded to 8 may win).
#include <algorithm>
#include <cstring>
#include <string>

#include "cuda/common.cuh"
#include "cuda/nf4.cuh"
#include "cuda/ops.cuh"

namespace lc::cuda {

namespace detail {
// Shared with matmul.cu (declared there): the split-K reduction and the matvec launcher.
Status splitk_reduce_cuda(float* out, const float* partial, int64_t count, int splits, cudaStream_t stream);
// split_cap: most split-K slices allowed (matmul.cu owns that policy and the workspace formula);
// force_splits > 0 overrides the automatic choice (tests), still capped.
Status matvec_cuda(float* out, const float* x, const Weight& w, int64_t n, Workspace ws, int split_cap,
                   int force_splits, cudaStream_t stream);
}  // namespace detail

namespace {

constexpr int kMatvecWarps = 4;
constexpr int kMatvecThreads = kMatvecWarps * 32;
// Split K below this many bytes of weight loads in flight per SM (each warp has R rows x 2
// chunks x 512 bytes in flight): enough to cover DRAM latency at full bandwidth.
constexpr int kTargetInflightBytesPerSm = 24 * 1024;
constexpr int kMinChunksPerSplit = 64;  // each split: at least two 16-byte loads per lane

// ---- exact decoding of packed integers in registers ---------------------------------------------
// byte K of v as a float: 0x4B0000vv is 2^23 + vv exactly, so one PRMT and one FADD.
template <int K>
__device__ __forceinline__ float byte_as_float(uint32_t v) {
  return __uint_as_float(__byte_perm(v, 0x4B000000u, 0x7440u | K)) - 8388608.0f;
}
// signed byte K of v (v already xor 0x80808080): 2^23 + 128 + c.
template <int K>
__device__ __forceinline__ float sbyte_as_float(uint32_t v_biased) {
  return __uint_as_float(__byte_perm(v_biased, 0x4B000000u, 0x7440u | K)) - 8388736.0f;
}
__device__ __forceinline__ void bytes4(float (&q)[4], uint32_t v) {
  q[0] = byte_as_float<0>(v);
  q[1] = byte_as_float<1>(v);
  q[2] = byte_as_float<2>(v);
  q[3] = byte_as_float<3>(v);
}
__device__ __forceinline__ void sbytes4(float (&q)[4], uint32_t v) {
  const uint32_t b = v ^ 0x80808080u;
  q[0] = sbyte_as_float<0>(b);
  q[1] = sbyte_as_float<1>(b);
  q[2] = sbyte_as_float<2>(b);
  q[3] = sbyte_as_float<3>(b);
}
__device__ __forceinline__ float2 bf16x2_to_float2(uint32_t v) {
  return make_float2(__uint_as_float(v << 16), __uint_as_float(v & 0xffff0000u));
}
__device__ __forceinline__ float2 f16x2_to_float2(uint32_t v) {
  return make_float2(__half2float(__ushort_as_half(static_cast<unsigned short>(v & 0xffffu))),
                     __half2float(__ushort_as_half(static_cast<unsigned short>(v >> 16))));
}
__device__ __forceinline__ float dot4(const float (&w)[4], const f128& x, float acc) {
  acc = fmaf(w[0], x[0], acc);
  acc = fmaf(w[1], x[1], acc);
  acc = fmaf(w[2], x[2], acc);
  return fmaf(w[3], x[3], acc);
}

// Bytes of one weight row of the codes (the part streamed in 16-byte chunks).
__host__ __device__ inline int64_t row_code_bytes(DType dt, int64_t cols) {
  switch (dt) {
    case DType::F32: return cols * 4;
    case DType::F16:
    case DType::BF16: return cols * 2;
    case DType::Q8_0: return cols;
    case DType::INT4:
    case DType::NF4: return cols / 2;
  }
  return 0;
}

// One 16-byte chunk of R rows: acc[r][i] += sum over the chunk's columns of w[r][c] * x[i][c].
// raw[r] holds the chunk of row r; scale/minv the row's group parameters (Q8_0, INT4, NF4);
// lut the NF4 table in shared memory (NF4 only).
template <DType DT, int N, int R>
__device__ __forceinline__ void matvec_chunk(float (&acc)[R][N], const uint32_t (&raw)[R][4], const float (&scale)[R],
                                             const float (&minv)[R], const float* __restrict__ x, int cols, int n,
                                             int chunk, int group_log2, const float* lut) {
  if constexpr (DT == DType::F32) {
    const int col = chunk * 4;
#pragma unroll
    for (int i = 0; i < N; i++) {
      if (i < n) {
        const f128 xv = load128nc(x + static_cast<size_t>(i) * cols + col);
#pragma unroll
        for (int r = 0; r < R; r++) {
          const float w[4] = {__uint_as_float(raw[r][0]), __uint_as_float(raw[r][1]), __uint_as_float(raw[r][2]),
                              __uint_as_float(raw[r][3])};
          acc[r][i] = dot4(w, xv, acc[r][i]);
        }
      }
    }
  } else if constexpr (DT == DType::BF16 || DT == DType::F16) {
    const int col = chunk * 8;
#pragma unroll
    for (int h = 0; h < 2; h++) {  // two quads of 4 columns
      float w[R][4];
#pragma unroll
      for (int r = 0; r < R; r++) {
        const float2 a = DT == DType::BF16 ? bf16x2_to_float2(raw[r][2 * h]) : f16x2_to_float2(raw[r][2 * h]);
        const float2 b = DT == DType::BF16 ? bf16x2_to_float2(raw[r][2 * h + 1]) : f16x2_to_float2(raw[r][2 * h + 1]);
        w[r][0] = a.x;
        w[r][1] = a.y;
        w[r][2] = b.x;
        w[r][3] = b.y;
      }
#pragma unroll
      for (int i = 0; i < N; i++) {
        if (i < n) {
          const f128 xv = load128nc(x + static_cast<size_t>(i) * cols + col + 4 * h);
#pragma unroll
          for (int r = 0; r < R; r++) acc[r][i] = dot4(w[r], xv, acc[r][i]);
        }
      }
    }
  } else if constexpr (DT == DType::Q8_0) {
    // 16 codes, columns 16 * chunk ..; one scale (group chunk / 2): acc += scale * sum(code * x).
    const int col = chunk * 16;
    float pq[R][N];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
      for (int i = 0; i < N; i++) pq[r][i] = 0.0f;
#pragma unroll
    for (int q = 0; q < 4; q++) {
      float c[R][4];
#pragma unroll
      for (int r = 0; r < R; r++) sbytes4(c[r], raw[r][q]);
#pragma unroll
      for (int i = 0; i < N; i++) {
        if (i < n) {
          const f128 xv = load128nc(x + static_cast<size_t>(i) * cols + col + 4 * q);
#pragma unroll
          for (int r = 0; r < R; r++) pq[r][i] = dot4(c[r], xv, pq[r][i]);
        }
      }
    }
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
      for (int i = 0; i < N; i++) acc[r][i] = fmaf(scale[r], pq[r][i], acc[r][i]);
  } else if constexpr (DT == DType::NF4) {
    // 16 code bytes of 64-block gi at byte offset b0: low nibbles are columns lo .. lo+15, high
    // nibbles lo+32 .. lo+47. acc += scale * sum(table[q] x).
    const int gi = chunk >> 1;
    const int b0 = (chunk & 1) * 16;
    const int lo = (gi << 6) + b0, hi = lo + 32;
    float pq[R][N];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
      for (int i = 0; i < N; i++) pq[r][i] = 0.0f;
#pragma unroll
    for (int q = 0; q < 4; q++) {
      float wl[R][4], wh[R][4];
#pragma unroll
      for (int r = 0; r < R; r++) {
#pragma unroll
        for (int b = 0; b < 4; b++) {
          const uint32_t byte = (raw[r][q] >> (8 * b)) & 0xFFu;
          wl[r][b] = lut[byte & 0x0Fu];
          wh[r][b] = lut[byte >> 4];
        }
      }
#pragma unroll
      for (int i = 0; i < N; i++) {
        if (i < n) {
          const float* xi = x + static_cast<size_t>(i) * cols;
          const f128 xl = load128nc(xi + lo + 4 * q);
          const f128 xh = load128nc(xi + hi + 4 * q);
#pragma unroll
          for (int r = 0; r < R; r++) pq[r][i] = dot4(wh[r], xh, dot4(wl[r], xl, pq[r][i]));
        }
      }
    }
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
      for (int i = 0; i < N; i++) acc[r][i] = fmaf(scale[r], pq[r][i], acc[r][i]);
  } else {  // INT4
    // 16 code bytes of group gi at byte offset b0 inside it: low nibbles are columns lo .. lo+15,
    // high nibbles lo+G/2 .. lo+G/2+15. acc += scale * sum(q x) + min * sum(x).
    const int tiles_log2 = group_log2 - 5;  // chunks per group = G / 32
    const int gi = chunk >> tiles_log2;
    const int b0 = (chunk & ((1 << tiles_log2) - 1)) * 16;
    const int lo = (gi << group_log2) + b0, hi = lo + (1 << (group_log2 - 1));
    float pq[R][N], sx[N];
#pragma unroll
    for (int i = 0; i < N; i++) {
      sx[i] = 0.0f;
#pragma unroll
      for (int r = 0; r < R; r++) pq[r][i] = 0.0f;
    }
#pragma unroll
    for (int q = 0; q < 4; q++) {
      float ql[R][4], qh[R][4];
#pragma unroll
      for (int r = 0; r < R; r++) {
        bytes4(ql[r], raw[r][q] & 0x0F0F0F0Fu);
        bytes4(qh[r], (raw[r][q] >> 4) & 0x0F0F0F0Fu);
      }
#pragma unroll
      for (int i = 0; i < N; i++) {
        if (i < n) {
          const float* xi = x + static_cast<size_t>(i) * cols;
          const f128 xl = load128nc(xi + lo + 4 * q);
          const f128 xh = load128nc(xi + hi + 4 * q);
          sx[i] += ((xl[0] + xl[1]) + (xl[2] + xl[3])) + ((xh[0] + xh[1]) + (xh[2] + xh[3]));
#pragma unroll
          for (int r = 0; r < R; r++) pq[r][i] = dot4(qh[r], xh, dot4(ql[r], xl, pq[r][i]));
        }
      }
    }
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
      for (int i = 0; i < N; i++) acc[r][i] = fmaf(minv[r], sx[i], fmaf(scale[r], pq[r][i], acc[r][i]));
  }
}

// out or partial: dst[split][n][rows] (dst = out when gridDim.y == 1).
// Grid: x = ceil(rows / (4 R)) blocks of 4 warps, y = splits (chunk ranges of chunks_per_split).
// Launch bounds: at least 4 blocks (16 warps) per SM, 3 for N = 8 (<= 128 / 170 registers):
// with two 16-byte loads per row and lane in flight that keeps >= 32 KB of loads in flight per
// SM, and ptxas neither spills nor hoists every x load into registers.
template <DType DT, int N, int R>
__global__ void __launch_bounds__(kMatvecThreads, N >= 8 ? 3 : 4)
    matvec_kernel(float* __restrict__ dst, const float* __restrict__ x, const uint8_t* __restrict__ w, int rows,
                  int cols, int n, int group_log2, int chunks_per_split) {
  const int lane = lane_id();
  const int row0 = (static_cast<int>(blockIdx.x) * kMatvecWarps + warp_id()) * R;
  const int64_t row_bytes = row_code_bytes(DT, cols);
  const int chunks = static_cast<int>(row_bytes / 16);
  const int k_begin = static_cast<int>(blockIdx.y) * chunks_per_split;
  const int k_end = min(chunks, k_begin + chunks_per_split);

  const uint8_t* wrow[R];
  const __half* q8_scales[R];
  const uint32_t* int4_params[R];
#pragma unroll
  for (int r = 0; r < R; r++) {
    const int row = min(row0 + r, rows - 1);  // clamped: rows past the end load row rows-1, never stored
    wrow[r] = w + static_cast<size_t>(row) * row_bytes;
    q8_scales[r] = nullptr;
    int4_params[r] = nullptr;
    if constexpr (DT == DType::Q8_0) {  // planar: scales [rows][cols/32] after all the codes
      q8_scales[r] = reinterpret_cast<const __half*>(w + static_cast<size_t>(rows) * cols) + static_cast<size_t>(row) * (cols / 32);
    } else if constexpr (DT == DType::INT4 || DT == DType::NF4) {  // planar: {scale, min} f16 pairs (INT4) or
      // f32 scales (NF4), 4 bytes per group, [rows][cols/G] after the codes
      int4_params[r] = reinterpret_cast<const uint32_t*>(w + static_cast<size_t>(rows) * (cols / 2)) +
                       static_cast<size_t>(row) * (cols >> group_log2);
    }
  }

  float acc[R][N];
#pragma unroll
  for (int r = 0; r < R; r++)
#pragma unroll
    for (int i = 0; i < N; i++) acc[r][i] = 0.0f;

  auto params = [&](int chunk, float (&scale)[R], float (&minv)[R]) {
#pragma unroll
    for (int r = 0; r < R; r++) {
      scale[r] = 0.0f;
      minv[r] = 0.0f;
      if constexpr (DT == DType::Q8_0) {
        scale[r] = __half2float(__ldg(q8_scales[r] + (chunk >> 1)));
      } else if constexpr (DT == DType::INT4) {
        const uint32_t p = __ldg(int4_params[r] + (chunk >> (group_log2 - 5)));
        scale[r] = __half2float(__ushort_as_half(static_cast<unsigned short>(p & 0xffffu)));
        minv[r] = __half2float(__ushort_as_half(static_cast<unsigned short>(p >> 16)));
      } else if constexpr (DT == DType::NF4) {
        scale[r] = __uint_as_float(__ldg(int4_params[r] + (chunk >> 1)));
      }
    }
  };

  // NF4: the table in shared memory, complete for every warp after this barrier.
  __shared__ float nf4_lut[16];
  if constexpr (DT == DType::NF4) {
    if (threadIdx.x < 16) nf4_lut[threadIdx.x] = nf4_table_value(static_cast<int>(threadIdx.x));
    __syncthreads();
  }

  // Two chunks per row in flight per lane: all loads of both are issued before either is used.
  for (int k = k_begin + lane; k < k_end; k += 64) {
    const bool second = k + 32 < k_end;
    uint32_t raw0[R][4], raw1[R][4];
    float s0[R], m0[R], s1[R], m1[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
      const Packed128<uint32_t> v = load128cs(reinterpret_cast<const uint32_t*>(wrow[r] + static_cast<size_t>(k) * 16));
#pragma unroll
      for (int j = 0; j < 4; j++) raw0[r][j] = v[j];
    }
    if (second) {
#pragma unroll
      for (int r = 0; r < R; r++) {
        const Packed128<uint32_t> v =
            load128cs(reinterpret_cast<const uint32_t*>(wrow[r] + static_cast<size_t>(k + 32) * 16));
#pragma unroll
        for (int j = 0; j < 4; j++) raw1[r][j] = v[j];
      }
    }
    params(k, s0, m0);
    if (second) params(k + 32, s1, m1);
    matvec_chunk<DT, N, R>(acc, raw0, s0, m0, x, cols, n, k, group_log2, nf4_lut);
    if (second) matvec_chunk<DT, N, R>(acc, raw1, s1, m1, x, cols, n, k + 32, group_log2, nf4_lut);
  }

  float* out = dst + static_cast<size_t>(blockIdx.y) * n * rows;
#pragma unroll
  for (int r = 0; r < R; r++) {
#pragma unroll
    for (int i = 0; i < N; i++) {
      const float v = warp_reduce_sum(acc[r][i]);
      if (lane == 0 && i < n && row0 + r < rows) out[static_cast<size_t>(i) * rows + row0 + r] = v;
    }
  }
}

// Fallback for F32/F16/BF16 without 16-byte alignment: one warp per row, lanes stride over the
// columns (coalesced scalar loads), up to 8 activation rows. Grid: ceil(rows / 4) blocks of 4 warps.
template <DType DT>
__device__ __forceinline__ float load_weight(const void* w, size_t index) {
  if constexpr (DT == DType::F32) {
    return __ldg(static_cast<const float*>(w) + index);
  } else if constexpr (DT == DType::F16) {
    return __half2float(__ushort_as_half(__ldg(static_cast<const unsigned short*>(w) + index)));
  } else {
    return __uint_as_float(static_cast<uint32_t>(__ldg(static_cast<const unsigned short*>(w) + index)) << 16);
  }
}

template <DType DT>
__global__ void __launch_bounds__(kMatvecThreads)
    matvec_scalar_kernel(float* __restrict__ out, const float* __restrict__ x, const void* __restrict__ w, int rows,
                         int cols, int n) {
  const int lane = lane_id();
  const int row = static_cast<int>(blockIdx.x) * kMatvecWarps + warp_id();
  const int r = min(row, rows - 1);
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int c = lane; c < cols; c += 32) {
    const float wv = load_weight<DT>(w, static_cast<size_t>(r) * cols + c);
#pragma unroll
    for (int i = 0; i < 8; i++)
      if (i < n) acc[i] = fmaf(wv, __ldg(x + static_cast<size_t>(i) * cols + c), acc[i]);
  }
#pragma unroll
  for (int i = 0; i < 8; i++) {
    const float v = warp_reduce_sum(acc[i]);
    if (lane == 0 && i < n && row < rows) out[static_cast<size_t>(i) * rows + row] = v;
  }
}

// out[j] = sum over s of partial[s * count + j], in split order.
__global__ void __launch_bounds__(256)
    splitk_reduce_kernel(float* __restrict__ out, const float* __restrict__ partial, int64_t count, int splits) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < count; j += stride) {
    float s = 0.0f;
    for (int z = 0; z < splits; z++) s += partial[static_cast<size_t>(z) * count + j];
    out[j] = s;
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

int sm_count() {
  int dev = 0, sms = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return 108;
  }
  return sms > 0 ? sms : 108;
}

int log2_exact(int64_t v) {
  int l = 0;
  while ((int64_t{1} << l) < v) l++;
  return l;
}

template <DType DT, int N>
Status launch_matvec(float* out, const float* x, const Weight& w, int n, Workspace ws, int split_cap,
                     int force_splits, cudaStream_t stream) {
  constexpr int R = N <= 2 ? 4 : 2;  // rows per warp: x reuse vs registers (R * N <= 16)
  const int rows = static_cast<int>(w.rows), cols = static_cast<int>(w.cols);
  const int chunks = static_cast<int>(row_code_bytes(DT, cols) / 16);
  const int warps = ceil_div(rows, R);
  const int blocks = ceil_div(warps, kMatvecWarps);

  // Split-K: enough row-warps to fill the SMs, each split at least kMinChunksPerSplit chunks.
  int splits = 1;
  if (force_splits > 0) {
    splits = force_splits;
  } else {
    const int target = sm_count() * (kTargetInflightBytesPerSm / (R * 2 * 512));
    if (warps < target) splits = std::min(ceil_div(target, warps), std::max(1, chunks / kMinChunksPerSplit));
  }
  splits = std::max(1, std::min({splits, split_cap, chunks}));
  const size_t partial_floats = static_cast<size_t>(n) * rows;
  const size_t fit = ws.data ? ws.bytes / (partial_floats * sizeof(float)) : 0;
  if (splits > 1 && static_cast<size_t>(splits) > fit) splits = static_cast<int>(std::max<size_t>(1, fit));
  const int per = ceil_div(chunks, splits);
  splits = ceil_div(chunks, per);  // no empty slices

  float* dst = splits > 1 ? static_cast<float*>(ws.data) : out;
  const int group_log2 = DT == DType::INT4 ? log2_exact(w.group) : DT == DType::NF4 ? 6 : 5;
  LC_LAUNCH((matvec_kernel<DT, N, R>), dim3(blocks, splits), kMatvecThreads, 0, stream, dst, x,
            static_cast<const uint8_t*>(w.data), rows, cols, n, group_log2, per);
  CUDA_TRY(cudaGetLastError());
  if (splits > 1) return detail::splitk_reduce_cuda(out, dst, partial_floats, splits, stream);
  return Status::Ok();
}

template <DType DT>
Status launch_matvec_n(float* out, const float* x, const Weight& w, int n, Workspace ws, int split_cap,
                       int force_splits, cudaStream_t stream) {
  // The compiled activation-row counts: n runs in the smallest N >= n (rows i >= n are skipped).
  if (n == 1) return launch_matvec<DT, 1>(out, x, w, n, ws, split_cap, force_splits, stream);
  if (n == 2) return launch_matvec<DT, 2>(out, x, w, n, ws, split_cap, force_splits, stream);
  if (n <= 4) return launch_matvec<DT, 4>(out, x, w, n, ws, split_cap, force_splits, stream);
  if (n <= 8) return launch_matvec<DT, 8>(out, x, w, n, ws, split_cap, force_splits, stream);
  return unsupported("matvec: unsupported activation rows: " + std::to_string(n) + " (1..8)");
}

}  // namespace

namespace detail {

Status splitk_reduce_cuda(float* out, const float* partial, int64_t count, int splits, cudaStream_t stream) {
  const int64_t blocks = std::min<int64_t>(ceil_div(count, int64_t{256}), 4096);
  LC_LAUNCH(splitk_reduce_kernel, static_cast<unsigned>(blocks), 256, 0, stream, out, partial, count, splits);
  CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

// n in 1..8; shapes and dtype constraints validated by matmul_cuda.
Status matvec_cuda(float* out, const float* x, const Weight& w, int64_t n64, Workspace ws, int split_cap,
                   int force_splits, cudaStream_t stream) {
  const int n = static_cast<int>(n64);
  const bool vec_cols = w.dtype == DType::F32 ? w.cols % 4 == 0 : (w.dtype == DType::F16 || w.dtype == DType::BF16) ? w.cols % 8 == 0 : true;
  const bool vec = vec_cols && aligned16(w.data) && aligned16(x);
  if (!vec) {
    const int rows = static_cast<int>(w.rows), cols = static_cast<int>(w.cols);
    const int blocks = ceil_div(rows, kMatvecWarps);
    switch (w.dtype) {
      case DType::F32:
        LC_LAUNCH(matvec_scalar_kernel<DType::F32>, blocks, kMatvecThreads, 0, stream, out, x, w.data, rows, cols, n);
        break;
      case DType::F16:
        LC_LAUNCH(matvec_scalar_kernel<DType::F16>, blocks, kMatvecThreads, 0, stream, out, x, w.data, rows, cols, n);
        break;
      case DType::BF16:
        LC_LAUNCH(matvec_scalar_kernel<DType::BF16>, blocks, kMatvecThreads, 0, stream, out, x, w.data, rows, cols, n);
        break;
      default:
        return unsupported(std::string("matvec: ") + dtype_name(w.dtype) +
                           " weights and activations must be 16-byte aligned");
    }
    CUDA_TRY(cudaGetLastError());
    return Status::Ok();
  }
  switch (w.dtype) {
    case DType::F32: return launch_matvec_n<DType::F32>(out, x, w, n, ws, split_cap, force_splits, stream);
    case DType::F16: return launch_matvec_n<DType::F16>(out, x, w, n, ws, split_cap, force_splits, stream);
    case DType::BF16: return launch_matvec_n<DType::BF16>(out, x, w, n, ws, split_cap, force_splits, stream);
    case DType::Q8_0: return launch_matvec_n<DType::Q8_0>(out, x, w, n, ws, split_cap, force_splits, stream);
    case DType::INT4: return launch_matvec_n<DType::INT4>(out, x, w, n, ws, split_cap, force_splits, stream);
    case DType::NF4: return launch_matvec_n<DType::NF4>(out, x, w, n, ws, split_cap, force_splits, stream);
  }
  return unsupported(std::string("matvec: unsupported weight dtype: ") + dtype_name(w.dtype));
}

}  // namespace detail
}  // namespace lc::cuda
