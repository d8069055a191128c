// out[n][rows] = x[n][cols] . W^T: the matmul op (ops.cuh) for every weight dtype of
// native/core/dtype.h. CPU twin: matmul_cpu (native/cpu/ops/matmul_cpu.cc); check:
// native/tests/cuda_check_matmul.cu. This file holds the dispatch (matmul_cuda), the workspace
// contract (matmul_workspace_bytes), the prefill tensor-core GEMM and the exact f32 SIMT GEMM;
// the decode matrix-vector kernels are in matvec.cu.
//
// Dispatch (matmul_cuda):
//   n <= 8                           matvec.cu (f32 activations, f32 accumulation; split-K)
//   F32 weights, n > 8               matmul_simt_kernel: CUDA-core GEMM, f32 in and out, exact
//                                    like the CPU up to f32 rounding (llama2.c f32 models keep
//                                    their CPU-identical greedy tokens; converting them to bf16
//                                    would add 2^-9 relative error per weight for no memory gain)
//   F16/BF16 (cols % 8 == 0), Q8_0,  matmul_tc_kernel: tensor-core GEMM (mma.sync m16n8k16 bf16,
//   INT4, n > 8                      f32 accumulation), below
//   F16/BF16 with cols % 8 != 0 or   matmul_simt_kernel (16-byte loads impossible)
//   unaligned weights
//
// Tensor-core GEMM, C[m = token][n = weight row] = sum_k A[m][k] B[k][n] with A = x (bf16) and
// B[k][n] = W[n][k] (W row-major is B column-major: the mma .row.col operand order):
//   1. gemm_activations_kernel converts x once to bf16 into the workspace, xb[n_pad][k_pad]
//      (tokens padded to 128, k to 32, zero-filled: the main loop needs no bounds on A), and for
//      INT4 also sx[k_tile][n_pad] = sum of the tile's bf16 activations (the min term below).
//   2. Block tile BM x 128 x 32 (BM = 64 tokens for n <= 64, else 128), 4 warps along the weight
//      rows x BM/64 along the tokens (128 or 256 threads); each warp computes 64 tokens x 32 rows
//      (4 x 4 mma tiles, 64 f32 accumulators per lane). 4-stage cp.async pipeline (16-byte
//      copies; weight-row and k edges zero-filled with cp_async_16_zfill), one __syncthreads per
//      k-tile. A fragments by ldmatrix_x4 from rows padded to 80 bytes (conflict-free).
//   3. Weights reach the mma as bf16 registers:
//        BF16  ldmatrix_x4 straight from the copied tile.
//        F16   ldmatrix_x4, then f16x2 -> bf16x2 (round to nearest: 2^-9 relative per weight).
//              Chosen over the f16 mma, which would need f16 activations: the inputs of w2 in
//              Llama 2 reach thousands and f16 overflows at 65504; bf16 keeps f32's range and
//              one activation buffer serves every dtype. The cost: F16 weights lose 3 mantissa
//              bits in prefill (tolerance 2^-8 instead of 2^-9, see the check).
//        Q8_0  each lane reads its fragment's int8 pairs from shared memory and converts them
//              exactly to bf16 (|q| <= 128 fits bf16's 8 significant bits); the k-tile (32) is
//              one scale group, so the mma runs on exact codes into a temporary fragment and the
//              scale is applied in f32: acc += scale[row] * (sum over the tile of q x).
//        INT4  the k-tile is 16 code bytes of one group, i.e. columns lo..lo+15 (low nibbles) and
//              lo+G/2..lo+G/2+15 (high nibbles): the A tile is copied from those two column runs
//              (the same k order on both sides), nibbles become exact bf16 q (0x4300|q is 128+q,
//              minus 128), and acc += scale * (sum q x) + min * sx[token][tile].
//        NF4   the INT4 k-tile walk with G = 64; each nibble indexes a 16-entry table of the NF4
//              values rounded to bf16 (in shared memory, filled once per block), and
//              acc += scale * (sum table[q] x) with the f32 absmax applied in f32. The table's
//              bf16 rounding (2^-9 relative, as F16 weights get) is the one extra rounding.
//      So the only rounding before the f32 accumulation is x -> bf16 (and the weights for F16).
//   4. Split-K when the tile grid is smaller than the SM count (short prompts): gridDim.z slices
//      of k-tiles write partials [split][n][rows] into the workspace, reduced in order.
// Grids depend on n, rows, cols and the SM count only (fixed for a CUDA-graph capture).
// Resources (dynamic shared memory, 4 stages; BM = 64 / 128): BF16/F16 60 / 80 KiB, Q8_0 46 / 66
// KiB, INT4 33 / 54 KiB (cudaFuncSetAttribute above 48 KiB, before each launch). ptxas (CUDA 13,
// sm_80..sm_90a): 118-194 registers per thread, no spills.
//
// Workspace (matmul_workspace_bytes; 256-byte aligned parts): n <= 8: the split-K partials only,
// at offset 0. n > 8: xb bf16 [round_up(n, 128)][round_up(cols, 32)], then sx f32
// [round_up(cols, 32) / 32][round_up(n, 128)], then the partials. Partials hold at most
// min(2^22, rows * min(512, 32 n)) floats; every launch clamps its splits to what fits.
//
// To measure on a GPU (bench/kernels/matmul): matmul.{bf16,f16,q8_0,int4}.{4096x4096,11008x4096,
// 4096x11008} at n = 16, 64, 128, 512, 2048 as TFLOP/s against the measured mma.sync bf16 rate
// (and GB/s of weights for n <= 64); occupancy of BM = 128 (one block of 256 threads per SM above
// 128 registers); 3 vs 4 stages (80 KiB for BF16 BM = 128 leaves sm_86/89 one block per SM);
// the per-k-tile scale FMAs of Q8_0/INT4 against an in-smem dequantization; split-K thresholds
// and wave quantization; the activation conversion pass (re-done for Q, K and V: fusing those
// weights would save two); cudaFuncSetAttribute under CUDA-graph capture on the real driver.
#include <algorithm>
#include <cstring>
#include <string>

#include "cuda/common.cuh"
#include "cuda/nf4.cuh"
#include "cuda/ops.cuh"
#include "cuda/ptx.cuh"

namespace lc::cuda {

namespace detail {
// matvec.cu
Status splitk_reduce_cuda(float* out, const float* partial, int64_t count, int splits, cudaStream_t stream);
Status matvec_cuda(float* out, const float* x, const Weight& w, int64_t n, Workspace ws, int split_cap,
                   int force_splits, cudaStream_t stream);

// Which kernel family runs a matmul; Auto is matmul_cuda's choice. The others exist for the
// check (native/tests/cuda_check_matmul.cu), to run every path on every shape.
enum class MatmulPath { Auto, Matvec, TensorCore, Simt };
Status matmul_cuda_path(float* out, const float* x, const Weight& w, int64_t n, Workspace ws, MatmulPath path,
                        int force_splits, cudaStream_t stream);
}  // namespace detail

namespace {

constexpr int64_t kMatvecMaxN = 8;   // n <= 8: matvec kernels
constexpr int kMaxSplits = 32;       // split-K slices at most ...
constexpr int kMaxSplitValues = 512;  // ... and splits * n at most: partials <= rows * min(512, 32 n)
constexpr int64_t kMaxPartialFloats = int64_t{1} << 22;  // ... and at most 16 MiB of partials in the workspace
                                                          // (split-K only helps small grids; launches clamp
                                                          // their splits to what fits)
constexpr int kMinKTilesPerSplit = 8;  // GEMM split-K: at least 256 columns per slice

// ---- tensor-core GEMM configuration ---------------------------------------------------------------
enum class GemmB { BF16, F16, Q8_0, INT4, NF4 };

constexpr int kBN = 128;                 // weight rows per block (4 warps x 32)
constexpr int kBK = 32;                  // k per pipeline stage (two mma k-steps)
constexpr int kStages = 4;               // cp.async pipeline depth
constexpr int kTokenPad = 128;           // xb rows padded to the largest BM
constexpr int kAStride = kBK + 8;        // bf16 per A smem row: 80 bytes, ldmatrix conflict-free
constexpr int kB16Stride = kBK + 8;      // bf16/f16 per B smem row (same reason)
constexpr int kQ8Stride = 48;            // bytes per Q8_0 smem row: 32 codes + 16 padding
constexpr int kI4Stride = 16;            // bytes per INT4 smem row: 16 code bytes (conflict-free reads)

// Shared memory of one pipeline stage: A tile, weight tile, per-row scales, per-token sums.
template <GemmB B, int BM>
struct GemmSmem {
  static constexpr int a_bytes = BM * kAStride * 2;
  static constexpr int b_bytes = (B == GemmB::BF16 || B == GemmB::F16) ? kBN * kB16Stride * 2
                                 : B == GemmB::Q8_0                      ? kBN * kQ8Stride
                                                                         : kBN * kI4Stride;
  static constexpr int p_bytes = (B == GemmB::Q8_0 || B == GemmB::NF4) ? kBN * 4 : B == GemmB::INT4 ? kBN * 8 : 0;
  static constexpr int sx_bytes = B == GemmB::INT4 ? BM * 4 : 0;
  static constexpr int a_off = 0;
  static constexpr int b_off = a_off + a_bytes;
  static constexpr int p_off = b_off + b_bytes;
  static constexpr int sx_off = p_off + p_bytes;
  static constexpr int stage_bytes = sx_off + sx_bytes;
  static constexpr int bytes = stage_bytes * kStages;
  static_assert(a_bytes % 16 == 0 && b_bytes % 16 == 0 && p_bytes % 16 == 0 && sx_bytes % 16 == 0, "16-byte parts");
};

template <class To, class From>
__device__ __forceinline__ To bits_as(From v) {
  static_assert(sizeof(To) == sizeof(From), "same size");
  To t;
  std::memcpy(static_cast<void*>(&t), static_cast<const void*>(&v), sizeof(To));
  return t;
}

// Two int8 codes (low byte first) -> bf16x2, exactly.
__device__ __forceinline__ uint32_t i8x2_to_bf16x2(uint32_t v16) {
  const uint32_t b = v16 ^ 0x8080u;  // c + 128 in each byte; 0x4B0000vv = 2^23 + vv
  const float f0 = __uint_as_float(__byte_perm(b, 0x4B000000u, 0x7440u)) - 8388736.0f;
  const float f1 = __uint_as_float(__byte_perm(b, 0x4B000000u, 0x7441u)) - 8388736.0f;
  return bits_as<uint32_t>(__floats2bfloat162_rn(f0, f1));
}
// Two code bytes (low byte first) -> bf16x2 of their low nibbles (LOW) or high nibbles, exactly.
template <bool LOW>
__device__ __forceinline__ uint32_t nibbles_to_bf16x2(uint32_t v16) {
  const uint32_t spread = __byte_perm(v16, 0u, 0x4140u);  // bytes [b0, 0, b1, 0]
  const uint32_t q = LOW ? (spread & 0x000F000Fu) : ((spread >> 4) & 0x000F000Fu);
  const __nv_bfloat162 biased = bits_as<__nv_bfloat162>(q | 0x43004300u);  // 128 + q
  return bits_as<uint32_t>(__hsub2(biased, bits_as<__nv_bfloat162>(0x43004300u)));
}
__device__ __forceinline__ uint32_t f16x2_to_bf16x2(uint32_t v) {
  const float lo = __half2float(__ushort_as_half(static_cast<unsigned short>(v & 0xffffu)));
  const float hi = __half2float(__ushort_as_half(static_cast<unsigned short>(v >> 16)));
  return bits_as<uint32_t>(__floats2bfloat162_rn(lo, hi));
}

// The tensor-core GEMM. dst[split][n][rows] (dst = out without split-K). xb: bf16 [n_pad][k_pad];
// sx (INT4): f32 [k_pad/32][n_pad]; w: the weight in its dtype.h layout. Grid: x = ceil(rows/128),
// y = ceil(n/BM), z = splits over the k-tiles (ktiles_per_split each). Block: BM * 2 threads.
template <GemmB B, int BM>
__global__ void __launch_bounds__(BM * 2, 1)
    matmul_tc_kernel(float* __restrict__ dst, const __nv_bfloat16* __restrict__ xb, const float* __restrict__ sx,
                     const uint8_t* __restrict__ w, int n, int rows, int cols, int k_pad, int n_pad, int group_log2,
                     int ktiles_per_split) {
  using L = GemmSmem<B, BM>;
  constexpr int kThreads = BM * 2;
  constexpr bool kScaled = B == GemmB::Q8_0 || B == GemmB::INT4 || B == GemmB::NF4;
  constexpr bool kNibbles = B == GemmB::INT4 || B == GemmB::NF4;  // 4-bit codes, G/2-apart k order
  LC_DYNAMIC_SMEM(uint8_t, smem);
  const int tid = thread_rank(), lane = lane_id(), warp = warp_id();
  const int wn = warp & 3, wm = warp >> 2;  // warp's 32 weight rows / 64 tokens inside the block tile
  const int g = lane >> 2, t = lane & 3;    // mma fragment coordinates
  const int n0 = static_cast<int>(blockIdx.x) * kBN, m0 = static_cast<int>(blockIdx.y) * BM;
  const int ktiles = k_pad / kBK;
  const int kt0 = static_cast<int>(blockIdx.z) * ktiles_per_split;
  const int nk = min(ktiles - kt0, ktiles_per_split);

  // Column of A (and k of W) where 8-column part `part` (0..3) of k-tile kt starts.
  auto a_col = [&](int kt, int part) -> int {
    if constexpr (kNibbles) {
      const int tiles_log2 = group_log2 - 5;  // k-tiles per group: G / 32
      const int lo = ((kt >> tiles_log2) << group_log2) + (kt & ((1 << tiles_log2) - 1)) * 16;
      return part < 2 ? lo + part * 8 : lo + (1 << (group_log2 - 1)) + (part - 2) * 8;
    } else {
      return kt * kBK + part * 8;
    }
  };

  // Issues the cp.async copies of k-tile kt into a stage (A, sx, weight codes).
  auto load_tile = [&](int stage, int kt) {
    uint8_t* st = smem + stage * L::stage_bytes;
    __nv_bfloat16* As = reinterpret_cast<__nv_bfloat16*>(st + L::a_off);
#pragma unroll
    for (int c = tid; c < BM * 4; c += kThreads) {
      const int row = c >> 2, part = c & 3;
      cp_async_16(As + row * kAStride + part * 8, xb + static_cast<size_t>(m0 + row) * k_pad + a_col(kt, part));
    }
    if constexpr (B == GemmB::INT4) {
      if (tid < BM / 4) {
        cp_async_16(reinterpret_cast<float*>(st + L::sx_off) + tid * 4, sx + static_cast<size_t>(kt) * n_pad + m0 + tid * 4);
      }
    }
    uint8_t* Bs = st + L::b_off;
    if constexpr (B == GemmB::BF16 || B == GemmB::F16) {
#pragma unroll
      for (int c = tid; c < kBN * 4; c += kThreads) {
        const int row = c >> 2, part = c & 3, k = kt * kBK + part * 8;
        const bool ok = n0 + row < rows && k < cols;  // cols % 8 == 0: 8-column parts are all in or all out
        const uint8_t* src = ok ? w + (static_cast<size_t>(n0 + row) * cols + k) * 2 : w;
        cp_async_16_zfill(Bs + row * (kB16Stride * 2) + part * 16, src, ok ? 16 : 0);
      }
    } else if constexpr (B == GemmB::Q8_0) {
#pragma unroll
      for (int c = tid; c < kBN * 2; c += kThreads) {
        const int row = c >> 1, part = c & 1;
        const bool ok = n0 + row < rows;
        const uint8_t* src = ok ? w + static_cast<size_t>(n0 + row) * cols + kt * kBK + part * 16 : w;
        cp_async_16_zfill(Bs + row * kQ8Stride + part * 16, src, ok ? 16 : 0);
      }
    } else {  // INT4 / NF4: k-tile kt is bytes 16 kt .. 16 kt + 15 of every code row
#pragma unroll
      for (int c = tid; c < kBN; c += kThreads) {
        const bool ok = n0 + c < rows;
        const uint8_t* src = ok ? w + static_cast<size_t>(n0 + c) * (cols / 2) + kt * 16 : w;
        cp_async_16_zfill(Bs + c * kI4Stride, src, ok ? 16 : 0);
      }
    }
  };

  // Scales (Q8_0) / {scale, min} (INT4) of weight row n0 + tid for k-tile kt (threads < 128):
  // plain loads, stored into the stage after the current tile's math (latency hidden by it).
  auto load_params = [&](int kt) -> float2 {
    float2 p = make_float2(0.0f, 0.0f);
    if constexpr (B == GemmB::Q8_0) {
      if (tid < kBN && n0 + tid < rows) {
        const __half* scales = reinterpret_cast<const __half*>(w + static_cast<size_t>(rows) * cols);
        p.x = __half2float(__ldg(scales + static_cast<size_t>(n0 + tid) * (cols / 32) + kt));
      }
    } else if constexpr (B == GemmB::INT4) {
      if (tid < kBN && n0 + tid < rows) {
        const uint32_t* params = reinterpret_cast<const uint32_t*>(w + static_cast<size_t>(rows) * (cols / 2));
        const uint32_t v = __ldg(params + static_cast<size_t>(n0 + tid) * (cols >> group_log2) + (kt >> (group_log2 - 5)));
        p.x = __half2float(__ushort_as_half(static_cast<unsigned short>(v & 0xffffu)));
        p.y = __half2float(__ushort_as_half(static_cast<unsigned short>(v >> 16)));
      }
    } else if constexpr (B == GemmB::NF4) {
      if (tid < kBN && n0 + tid < rows) {
        const float* scales = reinterpret_cast<const float*>(w + static_cast<size_t>(rows) * (cols / 2));
        p.x = __ldg(scales + static_cast<size_t>(n0 + tid) * (cols >> 6) + (kt >> 1));
      }
    }
    return p;
  };
  auto store_params = [&](int stage, float2 p) {
    uint8_t* st = smem + stage * L::stage_bytes;
    if constexpr (B == GemmB::Q8_0 || B == GemmB::NF4) {
      if (tid < kBN) reinterpret_cast<float*>(st + L::p_off)[tid] = p.x;
    } else if constexpr (B == GemmB::INT4) {
      if (tid < kBN) reinterpret_cast<float2*>(st + L::p_off)[tid] = p;
    }
  };

  float acc[4][4][4];
#pragma unroll
  for (int mt = 0; mt < 4; mt++)
#pragma unroll
    for (int nt = 0; nt < 4; nt++)
#pragma unroll
      for (int j = 0; j < 4; j++) acc[mt][nt][j] = 0.0f;

  // NF4: the bf16 table, read only after the main loop's first __syncthreads.
  __shared__ uint16_t nf4_lut[16];
  if constexpr (B == GemmB::NF4) {
    if (tid < 16) nf4_lut[tid] = bits_as<uint16_t>(__float2bfloat16_rn(nf4_table_value(tid)));
  }

  // Prologue: stages 0 .. kStages-2 (one commit group each, empty past the end).
#pragma unroll
  for (int s = 0; s < kStages - 1; s++) {
    if (s < nk) {
      load_tile(s, kt0 + s);
      if constexpr (kScaled) store_params(s, load_params(kt0 + s));
    }
    cp_async_commit();
  }

  for (int it = 0; it < nk; it++) {
    cp_async_wait<kStages - 2>();  // this thread's copies of tile `it` have landed
    __syncthreads();               // everyone's have; and everyone is done with tile it-1's stage
    const int next = it + kStages - 1;
    float2 next_params = make_float2(0.0f, 0.0f);
    if (next < nk) {
      load_tile(next % kStages, kt0 + next);
      if constexpr (kScaled) next_params = load_params(kt0 + next);
    }
    cp_async_commit();

    const uint8_t* st = smem + (it % kStages) * L::stage_bytes;
    const __nv_bfloat16* As = reinterpret_cast<const __nv_bfloat16*>(st + L::a_off);
    uint32_t a[4][2][4];
#pragma unroll
    for (int mt = 0; mt < 4; mt++)
#pragma unroll
      for (int ks = 0; ks < 2; ks++)
        ldmatrix_x4(a[mt][ks], As + (wm * 64 + mt * 16 + (lane & 15)) * kAStride + ks * 16 + (lane >> 4) * 8);

    float sxv[4][2];
    if constexpr (B == GemmB::INT4) {
      const float* Sx = reinterpret_cast<const float*>(st + L::sx_off);
#pragma unroll
      for (int mt = 0; mt < 4; mt++) {
        sxv[mt][0] = Sx[wm * 64 + mt * 16 + g];
        sxv[mt][1] = Sx[wm * 64 + mt * 16 + g + 8];
      }
    }

#pragma unroll
    for (int nt = 0; nt < 4; nt++) {
      const int nb = wn * 32 + nt * 8;  // first weight row (block-local) of this n8 tile
      // b[0], b[1]: k 0..15 of the tile; b[2], b[3]: k 16..31 (fragment rows 2t.., 2t+8..)
      uint32_t b[4];
      if constexpr (B == GemmB::BF16 || B == GemmB::F16) {
        const __nv_bfloat16* Bs = reinterpret_cast<const __nv_bfloat16*>(st + L::b_off);
        ldmatrix_x4(b, Bs + (nb + (lane & 7)) * kB16Stride + (lane >> 3) * 8);
        if constexpr (B == GemmB::F16) {
#pragma unroll
          for (int j = 0; j < 4; j++) b[j] = f16x2_to_bf16x2(b[j]);
        }
      } else if constexpr (B == GemmB::Q8_0) {
        const uint8_t* p = st + L::b_off + (nb + g) * kQ8Stride + 2 * t;
#pragma unroll
        for (int j = 0; j < 4; j++) b[j] = i8x2_to_bf16x2(*reinterpret_cast<const uint16_t*>(p + 8 * j));
      } else if constexpr (B == GemmB::INT4) {
        const uint8_t* p = st + L::b_off + (nb + g) * kI4Stride + 2 * t;
        const uint32_t u0 = *reinterpret_cast<const uint16_t*>(p), u1 = *reinterpret_cast<const uint16_t*>(p + 8);
        b[0] = nibbles_to_bf16x2<true>(u0);   // k 2t, 2t+1: low nibbles of bytes 2t, 2t+1
        b[1] = nibbles_to_bf16x2<true>(u1);   // k 2t+8, 2t+9
        b[2] = nibbles_to_bf16x2<false>(u0);  // k 16+2t, 16+2t+1: high nibbles
        b[3] = nibbles_to_bf16x2<false>(u1);
      } else {  // NF4: the same nibbles, looked up in the bf16 table
        const uint8_t* p = st + L::b_off + (nb + g) * kI4Stride + 2 * t;
        const uint32_t u0 = *reinterpret_cast<const uint16_t*>(p), u1 = *reinterpret_cast<const uint16_t*>(p + 8);
        auto pair = [&](uint32_t u, int shift) -> uint32_t {  // nibbles of byte 0 / byte 1 -> bf16x2
          return uint32_t(nf4_lut[(u >> shift) & 15u]) | (uint32_t(nf4_lut[(u >> (shift + 8)) & 15u]) << 16);
        };
        b[0] = pair(u0, 0);
        b[1] = pair(u1, 0);
        b[2] = pair(u0, 4);
        b[3] = pair(u1, 4);
      }
      const uint32_t b_lo[2] = {b[0], b[1]}, b_hi[2] = {b[2], b[3]};
      if constexpr (!kScaled) {
#pragma unroll
        for (int mt = 0; mt < 4; mt++) {
          mma_m16n8k16_bf16(acc[mt][nt], a[mt][0], b_lo);
          mma_m16n8k16_bf16(acc[mt][nt], a[mt][1], b_hi);
        }
      } else {
        // Fragment columns 2t, 2t+1 are weight rows nb + 2t, nb + 2t + 1.
        float2 p0, p1;
        if constexpr (B == GemmB::Q8_0 || B == GemmB::NF4) {
          const float* P = reinterpret_cast<const float*>(st + L::p_off);
          p0 = make_float2(P[nb + 2 * t], 0.0f);
          p1 = make_float2(P[nb + 2 * t + 1], 0.0f);
        } else {
          const float2* P = reinterpret_cast<const float2*>(st + L::p_off);
          p0 = P[nb + 2 * t];
          p1 = P[nb + 2 * t + 1];
        }
        const float zero[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int mt = 0; mt < 4; mt++) {
          float q[4];
          mma_m16n8k16_bf16(q, a[mt][0], b_lo, zero);
          mma_m16n8k16_bf16(q, a[mt][1], b_hi);
          acc[mt][nt][0] = fmaf(p0.x, q[0], acc[mt][nt][0]);
          acc[mt][nt][1] = fmaf(p1.x, q[1], acc[mt][nt][1]);
          acc[mt][nt][2] = fmaf(p0.x, q[2], acc[mt][nt][2]);
          acc[mt][nt][3] = fmaf(p1.x, q[3], acc[mt][nt][3]);
          if constexpr (B == GemmB::INT4) {
            acc[mt][nt][0] = fmaf(p0.y, sxv[mt][0], acc[mt][nt][0]);
            acc[mt][nt][1] = fmaf(p1.y, sxv[mt][0], acc[mt][nt][1]);
            acc[mt][nt][2] = fmaf(p0.y, sxv[mt][1], acc[mt][nt][2]);
            acc[mt][nt][3] = fmaf(p1.y, sxv[mt][1], acc[mt][nt][3]);
          }
        }
      }
    }
    // The stage written here held tile it-1: every thread finished it before this iteration's barrier.
    if constexpr (kScaled) {
      if (next < nk) store_params(next % kStages, next_params);
    }
  }
  cp_async_wait<0>();  // nothing may be in flight when the block exits (only empty groups remain)

  float* out = dst + static_cast<size_t>(blockIdx.z) * n * rows;
#pragma unroll
  for (int mt = 0; mt < 4; mt++) {
#pragma unroll
    for (int nt = 0; nt < 4; nt++) {
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int tok = m0 + wm * 64 + mt * 16 + g + (j >> 1) * 8;
        const int row = n0 + wn * 32 + nt * 8 + 2 * t + (j & 1);
        if (tok < n && row < rows) out[static_cast<size_t>(tok) * rows + row] = acc[mt][nt][j];
      }
    }
  }
}

// xb[token][col] = bf16(x[token][col]) over [n_pad][k_pad] (zero outside [n][cols]); with sx:
// sx[kt][token] = sum of the 32 bf16 values of k-tile kt. One warp per (token, k-tile), lane =
// column; group_log2 > 0 selects the INT4 k-tile order (two 16-column runs, G/2 apart).
__global__ void __launch_bounds__(256)
    gemm_activations_kernel(__nv_bfloat16* __restrict__ xb, float* __restrict__ sx, const float* __restrict__ x, int n,
                            int cols, int n_pad, int k_pad, int group_log2) {
  const int lane = lane_id();
  const int ktiles = k_pad / kBK;
  const int64_t wid = static_cast<int64_t>(blockIdx.x) * 8 + warp_id();
  if (wid >= static_cast<int64_t>(n_pad) * ktiles) return;  // whole warps only
  const int tok = static_cast<int>(wid / ktiles), kt = static_cast<int>(wid % ktiles);
  int col = kt * kBK + lane;
  if (group_log2 > 0) {
    const int tiles_log2 = group_log2 - 5;
    const int lo = ((kt >> tiles_log2) << group_log2) + (kt & ((1 << tiles_log2) - 1)) * 16;
    col = lane < 16 ? lo + lane : lo + (1 << (group_log2 - 1)) + lane - 16;
  }
  const float v = tok < n && col < cols ? __ldg(x + static_cast<size_t>(tok) * cols + col) : 0.0f;
  const __nv_bfloat16 b = __float2bfloat16_rn(v);
  xb[static_cast<size_t>(tok) * k_pad + col] = b;
  if (sx != nullptr) {
    const float s = warp_reduce_sum(__bfloat162float(b));
    if (lane == 0) sx[static_cast<size_t>(kt) * n_pad + tok] = s;
  }
}

// ---- exact f32 SIMT GEMM (F32 weights; F16/BF16 rows that cannot take 16-byte loads) ----------------
// out[n][rows] = x . W^T with f32 products and sums. Block tile 64 tokens x 64 weight rows x 16 k,
// 256 threads, each 4 tokens x 4 rows (strided by 16: conflict-free shared reads). Each k-tile is
// summed apart, then added to the accumulator (error depth K/16 + 16 instead of K). Any sizes.
constexpr int kSimtTile = 64;
constexpr int kSimtK = 16;

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
__global__ void __launch_bounds__(256)
    matmul_simt_kernel(float* __restrict__ out, const float* __restrict__ x, const void* __restrict__ w, int n, int rows,
                       int cols) {
  __shared__ float As[kSimtK][kSimtTile + 4];
  __shared__ float Ws[kSimtK][kSimtTile + 4];
  const int tid = thread_rank(), tx = tid & 15, ty = tid >> 4;
  const int n0 = static_cast<int>(blockIdx.x) * kSimtTile, m0 = static_cast<int>(blockIdx.y) * kSimtTile;
  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
  for (int k0 = 0; k0 < cols; k0 += kSimtK) {
#pragma unroll
    for (int e = tid; e < kSimtTile * kSimtK; e += 256) {
      const int r = e / kSimtK, kk = e % kSimtK, k = k0 + kk;
      As[kk][r] = m0 + r < n && k < cols ? __ldg(x + static_cast<size_t>(m0 + r) * cols + k) : 0.0f;
      Ws[kk][r] = n0 + r < rows && k < cols ? load_weight<DT>(w, static_cast<size_t>(n0 + r) * cols + k) : 0.0f;
    }
    __syncthreads();
    float tile[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) tile[i][j] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kSimtK; kk++) {
      float av[4], wv[4];
#pragma unroll
      for (int i = 0; i < 4; i++) av[i] = As[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; j++) wv[j] = Ws[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) tile[i][j] = fmaf(av[i], wv[j], tile[i][j]);
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) acc[i][j] += tile[i][j];
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int tok = m0 + ty + 16 * i, row = n0 + tx + 16 * j;
      if (tok < n && row < rows) out[static_cast<size_t>(tok) * rows + row] = acc[i][j];
    }
  }
}

// ---- host side ------------------------------------------------------------------------------------

size_t align256(size_t v) { return (v + 255) & ~size_t{255}; }
int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
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

// The most split-K slices allowed for n activation rows (the workspace formula relies on it).
int split_cap(int64_t n) { return static_cast<int>(std::min<int64_t>(kMaxSplits, std::max<int64_t>(1, kMaxSplitValues / n))); }

// Workspace of the tensor-core path: xb, then sx, then the split-K partials (256-byte aligned parts).
struct GemmWorkspace {
  size_t xb_off, sx_off, part_off;
};
GemmWorkspace gemm_workspace(int64_t n, int64_t cols) {
  const int64_t n_pad = round_up(n, kTokenPad), k_pad = round_up(cols, kBK);
  GemmWorkspace l;
  l.xb_off = 0;
  l.sx_off = align256(size_t(n_pad) * size_t(k_pad) * 2);
  l.part_off = l.sx_off + align256(size_t(k_pad / kBK) * size_t(n_pad) * 4);
  return l;
}

template <GemmB B, int BM>
Status launch_gemm(float* out, const float* x, const Weight& w, int64_t n64, Workspace ws, int force_splits,
                   cudaStream_t stream) {
  using L = GemmSmem<B, BM>;
  const int n = static_cast<int>(n64), rows = static_cast<int>(w.rows), cols = static_cast<int>(w.cols);
  const int n_pad = static_cast<int>(round_up(n, kTokenPad)), k_pad = static_cast<int>(round_up(cols, kBK));
  const int ktiles = k_pad / kBK;
  const GemmWorkspace l = gemm_workspace(n, cols);
  if (ws.data == nullptr || ws.bytes < l.part_off || !aligned16(ws.data)) {
    return invalid_argument("matmul: workspace of " + std::to_string(ws.bytes) + " bytes is too small for n = " +
                            std::to_string(n) + ", cols = " + std::to_string(cols) + " (needs " + std::to_string(l.part_off) +
                            ", 16-byte aligned; size it with matmul_workspace_bytes)");
  }
  uint8_t* base = static_cast<uint8_t*>(ws.data);
  __nv_bfloat16* xb = reinterpret_cast<__nv_bfloat16*>(base + l.xb_off);
  float* sx = B == GemmB::INT4 ? reinterpret_cast<float*>(base + l.sx_off) : nullptr;
  const int group_log2 = B == GemmB::INT4 ? log2_exact(w.group) : B == GemmB::NF4 ? 6 : 0;

  // Split-K when the tile grid leaves SMs idle (short prompts); bounded by the workspace.
  const int grid_x = ceil_div(rows, kBN), grid_y = ceil_div(n, BM);
  int splits = 1;
  if (force_splits > 0) {
    splits = force_splits;
  } else {
    const int64_t blocks = int64_t(grid_x) * grid_y, sms = sm_count();
    if (blocks < sms) splits = static_cast<int>(std::min<int64_t>(ceil_div(sms, blocks), ktiles / kMinKTilesPerSplit));
  }
  splits = std::max(1, std::min({splits, split_cap(n), ktiles}));
  const size_t partial_bytes = size_t(n) * size_t(rows) * sizeof(float);
  if (splits > 1) splits = static_cast<int>(std::max<size_t>(1, std::min<size_t>(splits, (ws.bytes - l.part_off) / partial_bytes)));
  const int per = ceil_div(ktiles, splits);
  splits = ceil_div(ktiles, per);
  float* dst = splits > 1 ? reinterpret_cast<float*>(base + l.part_off) : out;

  const int64_t warps = int64_t(n_pad) * ktiles;
  LC_LAUNCH(gemm_activations_kernel, static_cast<unsigned>(ceil_div(warps, int64_t{8})), 256, 0, stream, xb, sx, x, n,
            cols, n_pad, k_pad, group_log2);
  CUDA_TRY(cudaGetLastError());

  if (L::bytes > 48 * 1024) {
    CUDA_TRY(cudaFuncSetAttribute(matmul_tc_kernel<B, BM>, cudaFuncAttributeMaxDynamicSharedMemorySize, L::bytes));
  }
  LC_LAUNCH((matmul_tc_kernel<B, BM>), dim3(grid_x, grid_y, splits), BM * 2, L::bytes, stream, dst, xb, sx,
            static_cast<const uint8_t*>(w.data), n, rows, cols, k_pad, n_pad, group_log2, per);
  CUDA_TRY(cudaGetLastError());
  if (splits > 1) return detail::splitk_reduce_cuda(out, dst, int64_t(n) * rows, splits, stream);
  return Status::Ok();
}

template <GemmB B>
Status launch_gemm_bm(float* out, const float* x, const Weight& w, int64_t n, Workspace ws, int force_splits,
                      cudaStream_t stream) {
  // The compiled token tiles: 64 for short prompts (less padding), 128 otherwise (more reuse).
  if (n <= 64) return launch_gemm<B, 64>(out, x, w, n, ws, force_splits, stream);
  return launch_gemm<B, 128>(out, x, w, n, ws, force_splits, stream);
}

Status launch_simt(float* out, const float* x, const Weight& w, int64_t n, cudaStream_t stream) {
  const int rows = static_cast<int>(w.rows), cols = static_cast<int>(w.cols);
  const dim3 grid(ceil_div(rows, kSimtTile), static_cast<unsigned>(ceil_div(n, int64_t{kSimtTile})));
  switch (w.dtype) {
    case DType::F32:
      LC_LAUNCH(matmul_simt_kernel<DType::F32>, grid, 256, 0, stream, out, x, w.data, static_cast<int>(n), rows, cols);
      break;
    case DType::F16:
      LC_LAUNCH(matmul_simt_kernel<DType::F16>, grid, 256, 0, stream, out, x, w.data, static_cast<int>(n), rows, cols);
      break;
    case DType::BF16:
      LC_LAUNCH(matmul_simt_kernel<DType::BF16>, grid, 256, 0, stream, out, x, w.data, static_cast<int>(n), rows, cols);
      break;
    default:
      return unsupported(std::string("matmul: no f32 SIMT GEMM for ") + dtype_name(w.dtype) + " weights");
  }
  CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

Status validate(const float* out, const float* x, const Weight& w, int64_t n) {
  const std::string what = std::string("matmul (") + dtype_name(w.dtype) + " " + std::to_string(w.rows) + "x" +
                           std::to_string(w.cols) + ", n = " + std::to_string(n) + "): ";
  if (n < 0 || n > int64_t{65535} * 64) return invalid_argument(what + "unsupported activation rows (0..4194240)");
  if (w.rows < 1 || w.cols < 1 || w.rows > INT32_MAX / 2 || w.cols > INT32_MAX / 2) {
    return invalid_argument(what + "unsupported weight shape");
  }
  if (n > 0 && (out == nullptr || x == nullptr || w.data == nullptr)) return invalid_argument(what + "null pointer");
  switch (w.dtype) {
    case DType::F32:
    case DType::F16:
    case DType::BF16: break;
    case DType::Q8_0:
      if (w.cols % kQ8Group != 0) return invalid_argument(what + "q8_0 cols must be a multiple of 32");
      break;
    case DType::INT4:
      if (w.group != 32 && w.group != 64 && w.group != 128) {
        return unsupported(what + "unsupported int4 group size: " + std::to_string(w.group) + " (32, 64, 128)");
      }
      if (w.cols % w.group != 0) return invalid_argument(what + "int4 cols must be a multiple of the group size");
      break;
    case DType::NF4:
      if (w.cols % 64 != 0) return invalid_argument(what + "nf4 cols must be a multiple of 64");
      break;
    default: return unsupported(what + "unsupported weight dtype: " + std::to_string(int(w.dtype)));
  }
  return Status::Ok();
}

}  // namespace

size_t matmul_workspace_bytes(int64_t max_n, int64_t max_cols, int64_t max_rows) {
  if (max_n <= 0 || max_cols <= 0 || max_rows <= 0) return 0;
  // GEMM (n > 8): bf16 activations + per-tile sums, then the partials. Matvec: partials only
  // (at offset 0). Split-K keeps splits <= 32 and splits * n <= 512 (split_cap), and clamps to
  // the partial space there is (so a capped reservation only lowers the split count).
  const int64_t partial_floats = std::min(kMaxPartialFloats, max_rows * std::min<int64_t>(kMaxSplitValues, kMaxSplits * max_n));
  const size_t partials = align256(size_t(partial_floats) * 4);
  if (max_n <= kMatvecMaxN) return partials;
  return gemm_workspace(max_n, max_cols).part_off + partials;
}

namespace detail {

Status matmul_cuda_path(float* out, const float* x, const Weight& w, int64_t n, Workspace ws, MatmulPath path,
                        int force_splits, cudaStream_t stream) {
  LC_TRY(validate(out, x, w, n));
  if (n == 0) return Status::Ok();
  const bool float_weights = w.dtype == DType::F32 || w.dtype == DType::F16 || w.dtype == DType::BF16;
  const bool tc_ok = w.dtype != DType::F32 && aligned16(w.data) && (!float_weights || w.cols % 8 == 0);
  if (path == MatmulPath::Auto) {
    path = n <= kMatvecMaxN ? MatmulPath::Matvec : tc_ok ? MatmulPath::TensorCore : MatmulPath::Simt;
  }
  switch (path) {
    case MatmulPath::Matvec: {
      // n > 8 (only when asked for): blocks of 8 activation rows.
      for (int64_t i0 = 0; i0 < n; i0 += kMatvecMaxN) {
        const int64_t m = std::min(kMatvecMaxN, n - i0);
        LC_TRY(matvec_cuda(out + i0 * w.rows, x + i0 * w.cols, w, m, ws, split_cap(m), force_splits, stream));
      }
      return Status::Ok();
    }
    case MatmulPath::TensorCore:
      if (!tc_ok) {
        return unsupported(std::string("matmul: the tensor-core GEMM does not take ") + dtype_name(w.dtype) +
                           " weights with cols = " + std::to_string(w.cols) +
                           (aligned16(w.data) ? "" : " (weights not 16-byte aligned)"));
      }
      switch (w.dtype) {
        case DType::BF16: return launch_gemm_bm<GemmB::BF16>(out, x, w, n, ws, force_splits, stream);
        case DType::F16: return launch_gemm_bm<GemmB::F16>(out, x, w, n, ws, force_splits, stream);
        case DType::Q8_0: return launch_gemm_bm<GemmB::Q8_0>(out, x, w, n, ws, force_splits, stream);
        case DType::INT4: return launch_gemm_bm<GemmB::INT4>(out, x, w, n, ws, force_splits, stream);
        case DType::NF4: return launch_gemm_bm<GemmB::NF4>(out, x, w, n, ws, force_splits, stream);
        default: break;
      }
      return unsupported(std::string("matmul: unsupported weight dtype for the tensor-core GEMM: ") + dtype_name(w.dtype));
    case MatmulPath::Simt:
      if (!float_weights) {
        return unsupported(std::string("matmul: unsupported weight dtype for the SIMT GEMM: ") + dtype_name(w.dtype) +
                           (aligned16(w.data) ? "" : " (quantized weights must be 16-byte aligned)"));
      }
      return launch_simt(out, x, w, n, stream);
    case MatmulPath::Auto: break;
  }
  return internal_error("matmul: no path");
}

}  // namespace detail

Status matmul_cuda(float* out, const float* x, const Weight& w, int64_t n, Workspace ws, cudaStream_t stream) {
  return detail::matmul_cuda_path(out, x, w, n, ws, detail::MatmulPath::Auto, 0, stream);
}

}  // namespace lc::cuda
