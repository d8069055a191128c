// attention_cuda: causal GQA attention over a KV cache (contract: ops.cuh; layouts: attention.cuh).
// Chooses the kernel and its launch from sizes fixed for a session (never the position):
//
//   n <= 8   attention_decode_gqa (attention_decode.cu): grid (n_splits, n_kv_heads, q_chunks),
//            128 threads; then attention_decode_merge (n * n_heads blocks) when n_splits > 1.
//   n > 8    attention_prefill_causal (attention_prefill.cu): grid (ceil(n * group / 64), n_kv_heads),
//            128 threads, no workspace.
//
// Sizes and why:
//   - KV tile 32 rows: one row per lane in the decode softmax, 4 rows per thread in the prefill
//     micro-tile; 2 x 32 x (128 + 4) f32 = 33 KiB of K/V staging at head_dim 128.
//   - decode split: split_len = max(128, ceil(capacity / 32) rounded up to 32 rows), so at most 32
//     splits: with 8 KV heads (70B-like) that is 256 blocks at any capacity >= 4096, with 32 (7B)
//     1024, enough to fill 108-132 SMs at long context; at least 128 rows each so a block's fixed
//     cost (queries, merge partials) stays small against its K/V bytes. Splits past the position
//     exit at once, so a short context costs only the splits it covers.
//   - decode query vectors per block: all group heads of the KV head for as many rows as fit in 32
//     (70B group 8: 4 rows per block), the cap bounding the per-thread accumulators (32 floats at
//     head_dim 128) and shared memory (55 KiB at 32 x 128).
//   - prefill: 64 query vectors (rows x group heads) per block, so GQA heads share K/V tiles there too.
//   - decode for n <= 8: beyond that the prefill kernel's 64-vector blocks are full enough.
// Shared memory above 48 KiB (decode with many query vectors at head_dim 128, prefill at 128) is
// opted into with cudaFuncSetAttribute before each such launch (allowed during graph capture;
// at most 76 KiB, within every target's limit: sm_86/89 allow 99 KiB).
#include <cmath>
#include <cstdint>
#include <string>

#include "attention.cuh"

namespace lc::cuda {

namespace {

size_t decode_smem_bytes(int qb, int hd_pad) {
  const size_t hdp = static_cast<size_t>(hd_pad) + 4;
  return sizeof(float) * (qb * hdp + 2 * kAttnTile * hdp + static_cast<size_t>(qb) * kAttnTile + 3 * static_cast<size_t>(qb));
}

size_t prefill_smem_bytes(int hd_pad) {
  const size_t hdp = static_cast<size_t>(hd_pad) + 4;
  return sizeof(float) * (kPrefillQ * hdp + 2 * kAttnTile * hdp + static_cast<size_t>(kPrefillQ) * (kAttnTile + 1));
}

int64_t n_splits_for(int64_t capacity) {
  const int64_t split = attention_split_len(capacity);
  return (capacity + split - 1) / split;
}

size_t dtype_bytes(DType t) { return t == DType::F32 ? 4 : 2; }

}  // namespace

int attention_head_dim_pad(int64_t head_dim) {
  if (head_dim < 1 || head_dim > kAttnMaxHeadDim) return 0;
  if (head_dim <= 32) return 32;
  if (head_dim <= 64) return 64;
  return 128;
}

int attention_split_len(int64_t capacity) {
  const int64_t per_split = (capacity + kDecodeMaxSplits - 1) / kDecodeMaxSplits;
  const int64_t rounded = (per_split + kAttnTile - 1) / kAttnTile * kAttnTile;
  return static_cast<int>(rounded < kDecodeMinSplit ? kDecodeMinSplit : rounded);
}

Status attention_plan(AttentionPlan* plan, int64_t n, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                      int64_t capacity) {
  *plan = AttentionPlan{};
  if (n < 1) return invalid_argument("attention: n must be at least 1, got " + std::to_string(n));
  if (n_heads < 1 || n_kv_heads < 1 || n_heads % n_kv_heads != 0) {
    return invalid_argument("attention: n_heads (" + std::to_string(n_heads) + ") must be a multiple of n_kv_heads (" +
                            std::to_string(n_kv_heads) + ")");
  }
  const int hd_pad = attention_head_dim_pad(head_dim);
  if (hd_pad == 0) {
    return unsupported("unsupported head_dim: " + std::to_string(head_dim) + " (CUDA attention supports 1.." +
                       std::to_string(kAttnMaxHeadDim) + "; 64 and 128 are specialized)");
  }
  if (capacity < 1 || capacity > INT32_MAX / 2) {
    return invalid_argument("attention: KV capacity out of range: " + std::to_string(capacity));
  }
  const int64_t group = n_heads / n_kv_heads;
  const int64_t total_q = n * group;  // query vectors per KV head
  if (total_q > INT32_MAX / 2 || n * n_heads > INT32_MAX / 2 || n_kv_heads > 65535) {
    return invalid_argument("attention: too many query rows or heads (n " + std::to_string(n) + ", n_heads " +
                            std::to_string(n_heads) + ")");
  }
  plan->head_dim_pad = hd_pad;
  if (n <= kDecodeMaxRows) {
    const int qb = static_cast<int>(total_q < kDecodeMaxQ ? total_q : kDecodeMaxQ);
    const int64_t chunks = (total_q + qb - 1) / qb;
    plan->decode = true;
    plan->q_per_block = qb;
    plan->split_len = attention_split_len(capacity);
    plan->n_splits = static_cast<int>(n_splits_for(capacity));
    plan->grid = dim3(static_cast<unsigned>(plan->n_splits), static_cast<unsigned>(n_kv_heads),
                      static_cast<unsigned>(chunks));
    plan->threads = kDecodeThreads;
    plan->smem_bytes = decode_smem_bytes(qb, hd_pad);
    if (plan->n_splits > 1) {
      plan->merge_grid = dim3(static_cast<unsigned>(n * n_heads), 1, 1);
      plan->merge_threads = static_cast<int>(head_dim >= 128 ? 128 : (head_dim + 31) / 32 * 32);
      plan->workspace_bytes =
          sizeof(float) * static_cast<size_t>(n * n_heads) * static_cast<size_t>(plan->n_splits) * (head_dim + 2);
    }
  } else {
    const int64_t chunks = (total_q + kPrefillQ - 1) / kPrefillQ;
    plan->decode = false;
    plan->q_per_block = kPrefillQ;
    plan->grid = dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(n_kv_heads), 1);
    plan->threads = kPrefillThreads;
    plan->smem_bytes = prefill_smem_bytes(hd_pad);
  }
  return Status::Ok();
}

size_t attention_workspace_bytes(int64_t max_n, int64_t n_heads, int64_t head_dim, int64_t capacity) {
  if (max_n < 1 || n_heads < 1 || head_dim < 1 || capacity < 1) return 0;
  const int64_t rows = max_n < kDecodeMaxRows ? max_n : kDecodeMaxRows;  // only decode uses it
  const int64_t splits = n_splits_for(capacity);
  if (splits == 1) return 0;
  return sizeof(float) * static_cast<size_t>(rows * n_heads) * static_cast<size_t>(splits) *
         static_cast<size_t>(head_dim + 2);
}

Status attention_cuda(float* out, const float* q, const KvLayer& cache, int64_t n, const int32_t* pos, int64_t n_heads,
                      int64_t n_kv_heads, int64_t head_dim, Workspace ws, cudaStream_t stream) {
  if (n == 0) return Status::Ok();
  AttentionPlan plan;
  LC_TRY(attention_plan(&plan, n, n_heads, n_kv_heads, head_dim, cache.capacity));
  if (cache.dtype != DType::F32 && cache.dtype != DType::F16 && cache.dtype != DType::BF16) {
    return unsupported(std::string("unsupported KV cache dtype: ") + dtype_name(cache.dtype) +
                       " (CUDA attention reads f32, f16 or bf16)");
  }
  if (cache.kv_dim != n_kv_heads * head_dim) {
    return invalid_argument("attention: cache kv_dim " + std::to_string(cache.kv_dim) + " != n_kv_heads * head_dim (" +
                            std::to_string(n_kv_heads * head_dim) + ")");
  }
  if (!out || !q || !pos || !cache.k || !cache.v) return invalid_argument("attention: null pointer");
  if (plan.decode && plan.workspace_bytes > 0 && (ws.data == nullptr || ws.bytes < plan.workspace_bytes)) {
    return invalid_argument("attention: workspace of " + std::to_string(ws.bytes) + " bytes, this call needs " +
                            std::to_string(plan.workspace_bytes) + " (attention_workspace_bytes)");
  }
  const size_t es = dtype_bytes(cache.dtype);
  const bool vec16 = (static_cast<size_t>(head_dim) * es) % 16 == 0 && (static_cast<size_t>(cache.kv_dim) * es) % 16 == 0 &&
                     reinterpret_cast<uintptr_t>(cache.k) % 16 == 0 && reinterpret_cast<uintptr_t>(cache.v) % 16 == 0;
  if (plan.decode) {
    return attention_decode_gqa_cuda(plan, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim, vec16, ws, stream);
  }
  return attention_prefill_causal_cuda(plan, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim, vec16, stream);
}

}  // namespace lc::cuda
