// attention_prefill_causal: causal GQA attention for many query rows (prefill, n > kDecodeMaxRows),
// flash-attention style: a block keeps 64 query vectors and walks the KV rows in tiles of 32,
// with scores living only in registers (and one 64 x 32 tile of probabilities in shared memory),
// online softmax per query vector and the causal mask per row. CPU twin: attention_cpu
// (native/cpu/ops/attention_cpu.cc). Layouts: attention.cuh.
//
// Grid (q_chunks, n_kv_heads), q_chunks = ceil(n * group / 64); block 128 threads = 16 x 8
// (ty = tid / 8, tx = tid % 8); dynamic shared memory
// (64 * (HD + 4) + 2 * 32 * (HD + 4) + 64 * 33) floats (76 KiB for HD = 128: opt-in above 48 KiB).
//   blockIdx.x  query vectors [64 c, 64 c + 64) of the KV head (all its query heads for 64 / group
//               rows), chunks taken in reverse so the longest causal rows start first
//   blockIdx.y  KV head
// Per KV tile (rows up to the causal length of the block's last row):
//   1. K, V rows -> f32 shared memory as in decode (16-byte loads one tile ahead, rows past the
//      causal length zero).
//   2. S = Q K^T as 4 x 4 register micro-tiles: thread (ty, tx) owns query vectors 4 ty .. 4 ty + 3
//      and tile rows tx, tx + 8, tx + 16, tx + 24; masked to -inf past each row's length.
//   3. online softmax in registers: the 8 threads of a query vector reduce max and sum with
//      shuffles (width 8); the output is rescaled by 2^(m_old - m_new); P goes to shared memory.
//   4. O += P V: thread (ty, tx) owns columns 4 (tx + 8 k) .. + 3 of its 4 query vectors (P rows are
//      written and read by the same warp: __syncwarp is enough between 3 and 4).
// Output o / l straight to out (no workspace).
//
// What to do next for speed (prefill is compute-bound; measure first, bench/kernels):
//   - tensor cores: S and P V with mma.m16n8k16 bf16 (ptx.cuh), K/V staged as bf16 with cp.async
//     double buffering (f16 caches: the f16 mma), P converted to bf16 in registers (FA2 layout:
//     the S accumulator fragment is the A fragment of P V); one warp per 16 query vectors.
//   - skip the masked upper-right part: fully masked tiles are already skipped per block, but the
//     diagonal tile is computed in full.
//   - on sm_90a, wgmma + TMA (FA3) once the mma path is in and measured.
#include <cmath>
#include <string>

#include "attention.cuh"

namespace lc::cuda {

namespace {

template <class T, int HD>
// minBlocksPerSM 1: ptxas otherwise trims HD = 64 to 128/168 registers with a small spill; shared
// memory (43-76 KiB) bounds the blocks per SM anyway.
__global__ void __launch_bounds__(kPrefillThreads, 1)
    attention_prefill_causal_kernel(float* out, const float* q, const T* kc, const T* vc, const int32_t* pos, int n,
                                    int n_heads, int group, int head_dim, int kv_dim, int capacity, float q_scale,
                                    int vec16) {
  constexpr int NT = kPrefillThreads;
  constexpr int BM = kPrefillQ;
  constexpr int TILE = kAttnTile;
  constexpr int HDP = HD + 4;
  constexpr int HD4 = HD / 4;
  constexpr int PS = TILE + 1;  // P row stride: the 4 query-vector groups of a warp hit different banks
  constexpr int NSL = HD4 / 8;  // float4 output slices per query vector per thread
  static_assert(NT == 128 && BM == 64 && TILE == 32, "prefill: the 16 x 8 thread map assumes these sizes");
  static_assert(HD4 % 8 == 0, "prefill: HD must be a multiple of 32");

  const int tid = static_cast<int>(threadIdx.x);
  const int tx = tid % 8, ty = tid / 8;
  const int chunk = static_cast<int>(gridDim.x - 1 - blockIdx.x);  // longest rows first
  const int kvh = static_cast<int>(blockIdx.y);
  const int g0 = chunk * BM;
  const int count = min(BM, n * group - g0);
  const int p0 = pos[0];
  const int max_len = min(p0 + (g0 + count - 1) / group + 1, capacity);

  LC_DYNAMIC_SMEM(float, smem);
  float* q_s = smem;              // [BM][HDP] pre-scaled queries, zero past head_dim and count
  float* k_s = q_s + BM * HDP;    // [TILE][HDP]
  float* v_s = k_s + TILE * HDP;  // [TILE][HDP]
  float* p_s = v_s + TILE * HDP;  // [BM][PS]

  for (int e = tid; e < BM * HD; e += NT) {
    const int j = e / HD, d = e % HD;
    float x = 0.0f;
    if (j < count && d < head_dim) {
      const int g = g0 + j;
      const int row = g / group, h = kvh * group + g % group;
      x = q[(static_cast<size_t>(row) * n_heads + h) * static_cast<size_t>(head_dim) + d] * q_scale;
    }
    q_s[j * HDP + d] = x;
  }

  // this thread's 4 query vectors: causal lengths (0 past count: fully masked), running max/sum
  int len[4];
  float m[4], l[4];
  float4 o[4][NSL];
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int j = 4 * ty + i;
    len[i] = j < count ? min(p0 + (g0 + j) / group + 1, capacity) : 0;
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int k = 0; k < NSL; k++) o[i][k] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }

  const T* k_head = kc + static_cast<size_t>(kvh) * head_dim;
  const T* v_head = vc + static_cast<size_t>(kvh) * head_dim;
  using Stager = KvTileStager<T, HD, NT>;
  Stager stager;
  if (vec16) stager.load(k_head, v_head, kv_dim, 0, max_len, head_dim);

  for (int t0 = 0; t0 < max_len; t0 += TILE) {
    const int rows = min(TILE, max_len - t0);
    // 1. stage this tile, fetch the next one into registers
    if (vec16) {
      stager.store(k_s, v_s);
    } else {
      Stager::store_scalar(k_s, v_s, k_head, v_head, kv_dim, t0, max_len, head_dim);
    }
    __syncthreads();
    if (vec16 && t0 + TILE < max_len) stager.load(k_head, v_head, kv_dim, t0 + TILE, max_len, head_dim);

    // 2. S = Q K^T, 4 x 4 per thread
    float s[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
#pragma unroll
      for (int c = 0; c < 4; c++) s[i][c] = 0.0f;
    }
#pragma unroll 2
    for (int d4 = 0; d4 < HD4; d4++) {
      float4 qf[4], kf[4];
#pragma unroll
      for (int i = 0; i < 4; i++) qf[i] = *reinterpret_cast<const float4*>(q_s + (4 * ty + i) * HDP + 4 * d4);
#pragma unroll
      for (int c = 0; c < 4; c++) kf[c] = *reinterpret_cast<const float4*>(k_s + (tx + 8 * c) * HDP + 4 * d4);
#pragma unroll
      for (int i = 0; i < 4; i++) {
#pragma unroll
        for (int c = 0; c < 4; c++) s[i][c] += dot4(qf[i], kf[c]);
      }
    }

    // 3. mask, online softmax (the 8 lanes tx of a query vector share one warp)
#pragma unroll
    for (int i = 0; i < 4; i++) {
      float mx = -INFINITY;
#pragma unroll
      for (int c = 0; c < 4; c++) {
        if (t0 + tx + 8 * c >= len[i]) s[i][c] = -INFINITY;
        mx = fmaxf(mx, s[i][c]);
      }
      const float m_new = fmaxf(m[i], warp_reduce_max<8>(mx));
      const bool none = m_new == -INFINITY;
      const float alpha = none ? 1.0f : exp2f(m[i] - m_new);
      float sum = 0.0f;
#pragma unroll
      for (int c = 0; c < 4; c++) {
        const float p = none ? 0.0f : exp2f(s[i][c] - m_new);
        p_s[(4 * ty + i) * PS + tx + 8 * c] = p;
        sum += p;
      }
      l[i] = l[i] * alpha + warp_reduce_sum<8>(sum);
      m[i] = m_new;
#pragma unroll
      for (int k = 0; k < NSL; k++) {
        o[i][k].x *= alpha;
        o[i][k].y *= alpha;
        o[i][k].z *= alpha;
        o[i][k].w *= alpha;
      }
    }
    __syncwarp();

    // 4. O += P V
    for (int t = 0; t < rows; t++) {
      float4 vf[NSL];
#pragma unroll
      for (int k = 0; k < NSL; k++) vf[k] = *reinterpret_cast<const float4*>(v_s + t * HDP + 4 * (tx + 8 * k));
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const float p = p_s[(4 * ty + i) * PS + t];
#pragma unroll
        for (int k = 0; k < NSL; k++) {
          o[i][k].x += p * vf[k].x;
          o[i][k].y += p * vf[k].y;
          o[i][k].z += p * vf[k].z;
          o[i][k].w += p * vf[k].w;
        }
      }
    }
    __syncthreads();  // the next tile overwrites k_s, v_s, p_s
  }

#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int j = 4 * ty + i;
    if (j >= count) continue;
    const int g = g0 + j;
    const int row = g / group, h = kvh * group + g % group;
    const float inv_l = 1.0f / l[i];
    float* dst = out + (static_cast<size_t>(row) * n_heads + h) * static_cast<size_t>(head_dim);
#pragma unroll
    for (int k = 0; k < NSL; k++) {
      const int d = 4 * (tx + 8 * k);
      const float v4[4] = {o[i][k].x * inv_l, o[i][k].y * inv_l, o[i][k].z * inv_l, o[i][k].w * inv_l};
#pragma unroll
      for (int e = 0; e < 4; e++) {
        if (d + e < head_dim) dst[d + e] = v4[e];
      }
    }
  }
}

template <class T, int HD>
Status launch_prefill(const AttentionPlan& plan, float* out, const float* q, const KvLayer& cache, int64_t n,
                      const int32_t* pos, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, bool vec16,
                      cudaStream_t stream) {
  const int group = static_cast<int>(n_heads / n_kv_heads);
  const float q_scale = static_cast<float>(1.4426950408889634 / std::sqrt(static_cast<double>(head_dim)));
  if (plan.smem_bytes > 48 * 1024) {
    CUDA_TRY(cudaFuncSetAttribute(attention_prefill_causal_kernel<T, HD>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(plan.smem_bytes)));
  }
  LC_LAUNCH((attention_prefill_causal_kernel<T, HD>), plan.grid, plan.threads, plan.smem_bytes, stream, out, q,
            static_cast<const T*>(cache.k), static_cast<const T*>(cache.v), pos, static_cast<int>(n),
            static_cast<int>(n_heads), group, static_cast<int>(head_dim), static_cast<int>(cache.kv_dim),
            static_cast<int>(cache.capacity), q_scale, vec16 ? 1 : 0);
  CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

template <class T>
Status launch_prefill_hd(const AttentionPlan& plan, float* out, const float* q, const KvLayer& cache, int64_t n,
                         const int32_t* pos, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, bool vec16,
                         cudaStream_t stream) {
  switch (plan.head_dim_pad) {
    case 32: return launch_prefill<T, 32>(plan, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim, vec16, stream);
    case 64: return launch_prefill<T, 64>(plan, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim, vec16, stream);
    case 128: return launch_prefill<T, 128>(plan, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim, vec16, stream);
    default: return unsupported("unsupported head_dim: " + std::to_string(head_dim));
  }
}

}  // namespace

Status attention_prefill_causal_cuda(const AttentionPlan& plan, float* out, const float* q, const KvLayer& cache,
                                     int64_t n, const int32_t* pos, int64_t n_heads, int64_t n_kv_heads,
                                     int64_t head_dim, bool vec16, cudaStream_t stream) {
  switch (cache.dtype) {
    case DType::F32:
      return launch_prefill_hd<float>(plan, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim, vec16, stream);
    case DType::F16:
      return launch_prefill_hd<__half>(plan, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim, vec16, stream);
    case DType::BF16:
      return launch_prefill_hd<__nv_bfloat16>(plan, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim, vec16,
                                              stream);
    default: return unsupported(std::string("unsupported KV cache dtype: ") + dtype_name(cache.dtype));
  }
}

}  // namespace lc::cuda
