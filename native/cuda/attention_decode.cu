// attention_decode_gqa: causal GQA attention for a few query rows (decode, n <= kDecodeMaxRows),
// split over the KV length (flash-decoding), then attention_decode_merge combines the splits.
// CPU twin: attention_cpu (native/cpu/ops/attention_cpu.cc). Layouts: attention.cuh.
//
// Grid (n_splits, n_kv_heads, q_chunks), block kDecodeThreads (128), dynamic shared memory
// (qb * (HD + 4) + 2 * 32 * (HD + 4) + qb * 32 + 3 * qb) floats, qb = plan.q_per_block:
//   blockIdx.x  split s: KV rows [s * split_len, (s + 1) * split_len), split_len a multiple of 32
//   blockIdx.y  KV head
//   blockIdx.z  a range of qb query vectors of that KV head: all its query heads for one or more
//               rows (qb = min(n * group, 32)), so each K/V byte is read from memory once per block
//               for every head that uses it (the point of GQA).
// A block whose split starts past the causal length of all its rows returns at once (the grid is
// sized for the capacity; the position is read on the device). The others loop over 32-row tiles:
//   1. K and V rows: 16-byte loads of the cache dtype into registers (issued one tile ahead),
//      converted to f32 into shared memory; rows past the causal length are zero.
//   2. scores s[j][t] = q_j . k_t (q pre-scaled by log2(e)/sqrt(head_dim)), 8 lanes per dot
//      product, masked to -inf for t >= len_j.
//   3. online softmax, one warp per query vector: m_j = max(m_j, max_t s), p = 2^(s - m_j),
//      l_j = l_j * 2^(m_old - m_j) + sum p, and the factor for the output.
//   4. o_j = o_j * factor + sum_t p[j][t] * v_t: each thread owns float4 slices of (j, column),
//      kept in registers for the whole block.
// Output: with one split (capacity <= split_len) o_j / l_j goes straight to out; otherwise each
// block writes its partial (o_j / l_j, m_j, l_j) for every (row, head, split) into the workspace,
// and attention_decode_merge_kernel (one block per (row, head)) weights the splits that lie inside
// the row's causal length by l_s * 2^(m_s - max m): out = sum w_s o_s / sum w_s.
//
// What to do next for speed (measure first, bench/kernels): score and PV phases read shared
// memory with little register reuse; when group * rows is 8 or more, an mma.m16n8k16 over
// (query vectors x tile rows) would replace both. Double-buffer the tile in shared memory with
// cp.async for f16/bf16 caches (convert on read) to halve the staged bytes.
#include <cmath>
#include <string>

#include "attention.cuh"

namespace lc::cuda {

namespace {

// One (split, KV head, query range) block. out != nullptr: single split, write normalized output
// directly; otherwise write partials part_o [n][n_heads][n_splits][head_dim] and part_ml
// [n][n_heads][n_splits][2] (m in base 2, l).
template <class T, int HD>
__global__ void __launch_bounds__(kDecodeThreads)
    attention_decode_gqa_kernel(float* out, float* part_o, float* part_ml, const float* q, const T* kc, const T* vc,
                                const int32_t* pos, int n, int n_heads, int group, int head_dim, int kv_dim,
                                int capacity, int split_len, int n_splits, int qb, float q_scale, int vec16) {
  constexpr int NT = kDecodeThreads;
  constexpr int TILE = kAttnTile;
  constexpr int HDP = HD + 4;
  constexpr int HD4 = HD / 4;
  constexpr int TPS = 8;                // lanes per dot product in the score phase
  constexpr int NG = NT / TPS;          // dot products in flight per pass
  constexpr int ACC = kDecodeMaxQ * HD4 / NT;  // float4 accumulators per thread
  static_assert(HD4 % TPS == 0, "decode: HD / 4 must be a multiple of the lanes per dot product");
  static_assert(kDecodeMaxQ * HD4 % NT == 0, "decode: accumulators must divide evenly");
  static_assert(TILE == 32, "decode: the softmax phase maps one tile row to one lane");

  const int tid = static_cast<int>(threadIdx.x);
  const int split = static_cast<int>(blockIdx.x);
  const int kvh = static_cast<int>(blockIdx.y);
  const int g0 = static_cast<int>(blockIdx.z) * qb;
  const int count = min(qb, n * group - g0);
  const int p0 = pos[0];
  const int max_len = min(p0 + (g0 + count - 1) / group + 1, capacity);  // the block's last row
  const int s0 = split * split_len;
  if (s0 >= max_len) return;  // past every row's causal length: nothing to do (uniform, no barrier yet)
  const int kv_end = min(s0 + split_len, max_len);

  LC_DYNAMIC_SMEM(float, smem);
  float* q_s = smem;                  // [qb][HDP]  query vectors, pre-scaled, zero past head_dim
  float* k_s = q_s + qb * HDP;        // [TILE][HDP]
  float* v_s = k_s + TILE * HDP;      // [TILE][HDP]
  float* s_s = v_s + TILE * HDP;      // [qb][TILE] scores, then probabilities
  float* m_s = s_s + qb * TILE;       // [qb] running max (base 2)
  float* l_s = m_s + qb;              // [qb] running sum
  float* a_s = l_s + qb;              // [qb] this tile's rescale factor for the output

  for (int e = tid; e < count * HD; e += NT) {
    const int j = e / HD, d = e % HD;
    const int g = g0 + j;
    const int row = g / group, h = kvh * group + g % group;
    q_s[j * HDP + d] =
        d < head_dim ? q[(static_cast<size_t>(row) * n_heads + h) * static_cast<size_t>(head_dim) + d] * q_scale : 0.0f;
  }
  for (int j = tid; j < count; j += NT) {
    m_s[j] = -INFINITY;
    l_s[j] = 0.0f;
  }

  float4 acc[ACC];
#pragma unroll
  for (int i = 0; i < ACC; i++) acc[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

  const T* k_head = kc + static_cast<size_t>(kvh) * head_dim;
  const T* v_head = vc + static_cast<size_t>(kvh) * head_dim;
  using Stager = KvTileStager<T, HD, NT>;
  Stager stager;
  if (vec16) stager.load(k_head, v_head, kv_dim, s0, kv_end, head_dim);

  const int grp = tid / TPS, sub = tid % TPS;
  const int warp = tid / 32, lane = tid % 32;
  const int n_pairs = count * TILE;

  for (int t0 = s0; t0 < kv_end; t0 += TILE) {
    const int rows = min(TILE, kv_end - t0);
    // 1. stage this tile, fetch the next one into registers
    if (vec16) {
      stager.store(k_s, v_s);
    } else {
      Stager::store_scalar(k_s, v_s, k_head, v_head, kv_dim, t0, kv_end, head_dim);
    }
    __syncthreads();
    if (vec16 && t0 + TILE < kv_end) stager.load(k_head, v_head, kv_dim, t0 + TILE, kv_end, head_dim);

    // 2. scores (the trip count is the same for every thread: the shuffles need all lanes)
    for (int base = 0; base < n_pairs; base += NG) {
      const int p = base + grp;
      const bool valid = p < n_pairs;
      const int j = valid ? p / TILE : 0, t = p % TILE;
      const float* qj = q_s + j * HDP;
      const float* kt = k_s + t * HDP;
      float dot = 0.0f;
#pragma unroll
      for (int k = 0; k < HD4 / TPS; k++) {
        const int c = sub + TPS * k;  // lanes of a dot product read adjacent 16-byte chunks
        dot += dot4(*reinterpret_cast<const float4*>(qj + 4 * c), *reinterpret_cast<const float4*>(kt + 4 * c));
      }
      dot = warp_reduce_sum<TPS>(dot);
      if (valid && sub == 0) {
        const int len = min(p0 + (g0 + j) / group + 1, capacity);
        s_s[j * TILE + t] = t0 + t < len ? dot : -INFINITY;
      }
    }
    __syncthreads();

    // 3. online softmax, one warp per query vector, one lane per tile row
    for (int j = warp; j < count; j += NT / 32) {
      const float s = s_s[j * TILE + lane];
      const float m_old = m_s[j];
      const float m_new = fmaxf(m_old, warp_reduce_max(s));
      const bool none = m_new == -INFINITY;  // nothing unmasked yet for this query vector
      const float p = none ? 0.0f : exp2f(s - m_new);
      const float alpha = none ? 1.0f : exp2f(m_old - m_new);
      const float sum = warp_reduce_sum(p);
      s_s[j * TILE + lane] = p;
      if (lane == 0) {
        m_s[j] = m_new;
        l_s[j] = l_s[j] * alpha + sum;
        a_s[j] = alpha;
      }
    }
    __syncthreads();

    // 4. o_j = o_j * alpha_j + P V, thread-owned float4 slices u = tid + NT * i -> (j, column 4c)
#pragma unroll
    for (int i = 0; i < ACC; i++) {
      const int u = tid + NT * i;
      if (u < count * HD4) {
        const int j = u / HD4, c = u % HD4;
        const float alpha = a_s[j];
        float4 o = acc[i];
        o.x *= alpha;
        o.y *= alpha;
        o.z *= alpha;
        o.w *= alpha;
        const float* pj = s_s + j * TILE;
        for (int t = 0; t < rows; t++) {
          const float p = pj[t];
          const float4 v = *reinterpret_cast<const float4*>(v_s + t * HDP + 4 * c);
          o.x += p * v.x;
          o.y += p * v.y;
          o.z += p * v.z;
          o.w += p * v.w;
        }
        acc[i] = o;
      }
    }
    __syncthreads();  // the next tile overwrites k_s, v_s, s_s
  }

  // Output: rows for which this split lies past their causal length write nothing (the merge
  // reads only the splits inside each row's length).
#pragma unroll
  for (int i = 0; i < ACC; i++) {
    const int u = tid + NT * i;
    if (u < count * HD4) {
      const int j = u / HD4, c = u % HD4;
      const int g = g0 + j;
      const int row = g / group, h = kvh * group + g % group;
      if (s0 >= min(p0 + row + 1, capacity)) continue;
      const float inv_l = 1.0f / l_s[j];
      const size_t rh = static_cast<size_t>(row) * n_heads + h;
      float* dst = out ? out + rh * head_dim : part_o + (rh * n_splits + split) * head_dim;
      const float o[4] = {acc[i].x * inv_l, acc[i].y * inv_l, acc[i].z * inv_l, acc[i].w * inv_l};
#pragma unroll
      for (int e = 0; e < 4; e++) {
        if (4 * c + e < head_dim) dst[4 * c + e] = o[e];
      }
    }
  }
  if (!out) {
    for (int j = tid; j < count; j += NT) {
      const int g = g0 + j;
      const int row = g / group, h = kvh * group + g % group;
      if (s0 >= min(p0 + row + 1, capacity)) continue;
      const size_t idx = (static_cast<size_t>(row) * n_heads + h) * n_splits + split;
      part_ml[2 * idx] = m_s[j];
      part_ml[2 * idx + 1] = l_s[j];
    }
  }
}

// One block per (row, head): out = sum_s w_s o_s / sum_s w_s over the splits inside the row's
// causal length, w_s = l_s * 2^(m_s - max m). Grid (n * n_heads), block merge_threads.
__global__ void attention_decode_merge_kernel(float* out, const float* part_o, const float* part_ml,
                                              const int32_t* pos, int n_heads, int head_dim, int capacity,
                                              int split_len, int n_splits) {
  const int rh = static_cast<int>(blockIdx.x);
  const int row = rh / n_heads;
  const int len = min(pos[0] + row + 1, capacity);
  const int active = min(n_splits, (len + split_len - 1) / split_len);
  const float* ml = part_ml + static_cast<size_t>(rh) * n_splits * 2;
  const float* po = part_o + static_cast<size_t>(rh) * n_splits * head_dim;
  float m = -INFINITY;
  for (int s = 0; s < active; s++) m = fmaxf(m, ml[2 * s]);
  float l = 0.0f;
  for (int s = 0; s < active; s++) l += ml[2 * s + 1] * exp2f(ml[2 * s] - m);
  const float inv_l = 1.0f / l;
  for (int d = static_cast<int>(threadIdx.x); d < head_dim; d += static_cast<int>(blockDim.x)) {
    float acc = 0.0f;
    for (int s = 0; s < active; s++) acc += ml[2 * s + 1] * exp2f(ml[2 * s] - m) * po[static_cast<size_t>(s) * head_dim + d];
    out[static_cast<size_t>(rh) * head_dim + d] = acc * inv_l;
  }
}

template <class T, int HD>
Status launch_decode(const AttentionPlan& plan, float* out, const float* q, const KvLayer& cache, int64_t n,
                     const int32_t* pos, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, bool vec16,
                     Workspace ws, cudaStream_t stream) {
  const int group = static_cast<int>(n_heads / n_kv_heads);
  const float q_scale = static_cast<float>(1.4426950408889634 / std::sqrt(static_cast<double>(head_dim)));
  const bool direct = plan.n_splits == 1;
  float* part_o = direct ? nullptr : static_cast<float*>(ws.data);
  float* part_ml = direct ? nullptr : part_o + static_cast<size_t>(n * n_heads) * plan.n_splits * head_dim;
  if (plan.smem_bytes > 48 * 1024) {
    CUDA_TRY(cudaFuncSetAttribute(attention_decode_gqa_kernel<T, HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(plan.smem_bytes)));
  }
  LC_LAUNCH((attention_decode_gqa_kernel<T, HD>), plan.grid, plan.threads, plan.smem_bytes, stream,
            direct ? out : nullptr, part_o, part_ml, q, static_cast<const T*>(cache.k), static_cast<const T*>(cache.v),
            pos, static_cast<int>(n), static_cast<int>(n_heads), group, static_cast<int>(head_dim),
            static_cast<int>(cache.kv_dim), static_cast<int>(cache.capacity), plan.split_len, plan.n_splits,
            plan.q_per_block, q_scale, vec16 ? 1 : 0);
  CUDA_TRY(cudaGetLastError());
  if (!direct) {
    LC_LAUNCH(attention_decode_merge_kernel, plan.merge_grid, plan.merge_threads, 0, stream, out, part_o, part_ml,
              pos, static_cast<int>(n_heads), static_cast<int>(head_dim), static_cast<int>(cache.capacity),
              plan.split_len, plan.n_splits);
    CUDA_TRY(cudaGetLastError());
  }
  return Status::Ok();
}

template <class T>
Status launch_decode_hd(const AttentionPlan& plan, float* out, const float* q, const KvLayer& cache, int64_t n,
                        const int32_t* pos, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, bool vec16,
                        Workspace ws, cudaStream_t stream) {
  switch (plan.head_dim_pad) {
    case 32: return launch_decode<T, 32>(plan, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim, vec16, ws, stream);
    case 64: return launch_decode<T, 64>(plan, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim, vec16, ws, stream);
    case 128: return launch_decode<T, 128>(plan, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim, vec16, ws, stream);
    default: return unsupported("unsupported head_dim: " + std::to_string(head_dim));
  }
}

}  // namespace

Status attention_decode_gqa_cuda(const AttentionPlan& plan, float* out, const float* q, const KvLayer& cache,
                                 int64_t n, const int32_t* pos, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                                 bool vec16, Workspace ws, cudaStream_t stream) {
  switch (cache.dtype) {
    case DType::F32:
      return launch_decode_hd<float>(plan, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim, vec16, ws, stream);
    case DType::F16:
      return launch_decode_hd<__half>(plan, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim, vec16, ws, stream);
    case DType::BF16:
      return launch_decode_hd<__nv_bfloat16>(plan, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim, vec16, ws,
                                             stream);
    default: return unsupported(std::string("unsupported KV cache dtype: ") + dtype_name(cache.dtype));
  }
}

}  // namespace lc::cuda
