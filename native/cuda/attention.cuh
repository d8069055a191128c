// Causal GQA attention on CUDA: what attention.cu (the launcher), attention_decode.cu,
// attention_prefill.cu and native/tests/cuda_check_attention.cu share. The public contract is
// attention_cuda / attention_workspace_bytes in ops.cuh; this header is the op family's inside.
//
// Layouts (all device memory):
//   q, out   f32 [n][n_heads][head_dim]          query row i is at position pos[0] + i
//   cache    k, v: T [capacity][kv_dim], kv_dim = n_kv_heads * head_dim, T = f32 | f16 | bf16;
//            KV head g of row t is k[t][g * head_dim .. (g + 1) * head_dim)
//   pos      int32 [1] on the device: the decode step is a replayed CUDA graph, so the position is
//            read by the kernels; grids depend only on (n, heads, head_dim, capacity).
// Query head h reads KV head h / group, group = n_heads / n_kv_heads. Row i attends to cache rows
// 0 .. len_i - 1, len_i = pos[0] + i + 1 (clamped to capacity, so a caller bug cannot read past
// the cache). Scale 1/sqrt(head_dim); softmax in f32 with the running max (online softmax,
// computed in base 2: q is pre-multiplied by log2(e) / sqrt(head_dim)).
//
// "Query vectors": the kernels handle, per KV head, the n * group (row, head) pairs that read it,
// numbered g = i * group + (h % group). A block takes a contiguous range of them, so it holds every
// query head of its KV head (and several rows when they fit) and reads each K/V tile once for all.
//
// Head dims: compiled for HD = 32, 64 and 128. 64 and 128 run their exact variant; any other
// head_dim <= 128 runs the next larger variant with the columns past head_dim zero in shared
// memory (the generic path: exact results, up to 4x the arithmetic for head_dim 8). Above 128:
// "unsupported head_dim".
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops.cuh"

namespace lc::cuda {

// ---- sizes (the reasons are in attention.cu's header) ------------------------------------------
constexpr int kAttnMaxHeadDim = 128;  // largest compiled variant
constexpr int kAttnTile = 32;         // KV rows per shared-memory tile (both kernels; = warp size)
constexpr int kDecodeMaxRows = 8;     // n <= this runs the decode kernel, larger n the prefill kernel
constexpr int kDecodeThreads = 128;   // decode block
constexpr int kDecodeMaxQ = 32;       // query vectors per decode block (group * rows, capped)
constexpr int kDecodeMinSplit = 128;  // KV rows per split: at least this ...
constexpr int kDecodeMaxSplits = 32;  // ... and at most this many splits
constexpr int kPrefillThreads = 128;  // prefill block: 16 x 8 threads
constexpr int kPrefillQ = 64;         // query vectors per prefill block (16 groups of 4)

// Which kernel runs and how it is launched, from sizes that are fixed for a session. Nothing here
// depends on the position: a captured graph replays the same launches at every step.
struct AttentionPlan {
  bool decode = true;       // attention_decode_gqa (+ merge) or attention_prefill_causal
  int head_dim_pad = 0;     // compiled variant: 32, 64 or 128
  dim3 grid{1, 1, 1};       // decode: (n_splits, n_kv_heads, q_chunks); prefill: (q_chunks, n_kv_heads)
  int threads = 0;
  size_t smem_bytes = 0;    // dynamic shared memory of the main kernel
  int q_per_block = 0;      // query vectors per block
  int split_len = 0;        // decode: KV rows per split (a multiple of kAttnTile)
  int n_splits = 1;         // decode: ceil(capacity / split_len); 1 = no merge, direct output
  dim3 merge_grid{0, 1, 1}; // decode with n_splits > 1: (n * n_heads); x = 0 when there is no merge
  int merge_threads = 0;
  size_t workspace_bytes = 0;  // decode with n_splits > 1: partials for this n
};

// The compiled variant for a head_dim: 32, 64, 128, or 0 when unsupported.
int attention_head_dim_pad(int64_t head_dim);
// KV rows per decode split for a cache capacity (the number of splits is ceil(capacity / it)).
int attention_split_len(int64_t capacity);
// The plan for one call; Unsupported / InvalidArgument with a readable message otherwise.
Status attention_plan(AttentionPlan* plan, int64_t n, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                      int64_t capacity);

// Kernel launchers (attention_decode.cu, attention_prefill.cu), called by attention_cuda with a
// checked plan; vec16: K/V rows may be read with 16-byte loads (aligned base, row and head
// strides multiples of 16 bytes), else the kernels read element by element.
Status attention_decode_gqa_cuda(const AttentionPlan& plan, float* out, const float* q, const KvLayer& cache,
                                 int64_t n, const int32_t* pos, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                                 bool vec16, Workspace ws, cudaStream_t stream);
Status attention_prefill_causal_cuda(const AttentionPlan& plan, float* out, const float* q, const KvLayer& cache,
                                     int64_t n, const int32_t* pos, int64_t n_heads, int64_t n_kv_heads,
                                     int64_t head_dim, bool vec16, cudaStream_t stream);

// ---- device helpers shared by both kernels ------------------------------------------------------

__device__ __forceinline__ float attn_to_f32(float x) { return x; }
__device__ __forceinline__ float attn_to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float attn_to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

__device__ __forceinline__ float dot4(float4 a, float4 b) { return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w; }

// Stages one KV tile of one KV head into shared memory as f32: rows t0 .. t0 + kAttnTile - 1,
// columns 0 .. HD - 1 of the head, into ks / vs [kAttnTile][HD + 4] (the +4 floats shift each row
// by 4 banks). Rows >= row_end and columns >= head_dim are written as 0, so every value a kernel
// reads from the tile is finite whatever the cache holds past the causal length.
//
// With 16-byte loads (vec16) the tile is fetched into registers first (load), while the previous
// tile is still being computed on, and converted into shared memory later (store): each thread
// holds kItems 16-byte vectors of K and of V. Without vec16, store() reads element by element.
template <class T, int HD, int NT>
struct KvTileStager {
  static constexpr int kVec = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte vector
  static constexpr int kVecPerRow = HD / kVec;                    // vectors per padded row
  static constexpr int kVectors = kAttnTile * kVecPerRow;
  static constexpr int kItems = (kVectors + NT - 1) / NT;
  static constexpr int kHdp = HD + 4;
  static_assert(HD % kVec == 0, "KvTileStager: HD must be a multiple of a 16-byte vector");

  Packed128<T> k[kItems];
  Packed128<T> v[kItems];

  // global -> registers (vec16 only). kc/vc point at column 0 of this KV head in row 0.
  __device__ __forceinline__ void load(const T* kc, const T* vc, int64_t kv_dim, int t0, int row_end, int head_dim) {
    const int vec_per_row = head_dim / kVec;  // vec16 guarantees head_dim % kVec == 0
#pragma unroll
    for (int i = 0; i < kItems; i++) {
      const int idx = static_cast<int>(threadIdx.x) + NT * i;
      const int row = idx / kVecPerRow, c = idx % kVecPerRow;
      if (idx < kVectors && t0 + row < row_end && c < vec_per_row) {
        const size_t off = static_cast<size_t>(t0 + row) * static_cast<size_t>(kv_dim) + static_cast<size_t>(c) * kVec;
        k[i] = load128nc(kc + off);
        v[i] = load128nc(vc + off);
      } else {
        k[i] = Packed128<T>::zeros();
        v[i] = Packed128<T>::zeros();
      }
    }
  }

  // registers -> shared memory, converted to f32 (vec16 only).
  __device__ __forceinline__ void store(float* ks, float* vs) const {
#pragma unroll
    for (int i = 0; i < kItems; i++) {
      const int idx = static_cast<int>(threadIdx.x) + NT * i;
      if (idx < kVectors) {
        const int row = idx / kVecPerRow, c = idx % kVecPerRow;
        float* kd = ks + row * kHdp + c * kVec;
        float* vd = vs + row * kHdp + c * kVec;
#pragma unroll
        for (int e = 0; e < kVec; e += 4) {
          *reinterpret_cast<float4*>(kd + e) = make_float4(attn_to_f32(k[i][e]), attn_to_f32(k[i][e + 1]),
                                                           attn_to_f32(k[i][e + 2]), attn_to_f32(k[i][e + 3]));
          *reinterpret_cast<float4*>(vd + e) = make_float4(attn_to_f32(v[i][e]), attn_to_f32(v[i][e + 1]),
                                                           attn_to_f32(v[i][e + 2]), attn_to_f32(v[i][e + 3]));
        }
      }
    }
  }

  // global -> shared memory element by element (no alignment needed).
  __device__ __forceinline__ static void store_scalar(float* ks, float* vs, const T* kc, const T* vc, int64_t kv_dim,
                                                      int t0, int row_end, int head_dim) {
    for (int idx = static_cast<int>(threadIdx.x); idx < kAttnTile * HD; idx += NT) {
      const int row = idx / HD, c = idx % HD;
      float kx = 0.0f, vx = 0.0f;
      if (t0 + row < row_end && c < head_dim) {
        const size_t off = static_cast<size_t>(t0 + row) * static_cast<size_t>(kv_dim) + static_cast<size_t>(c);
        kx = attn_to_f32(kc[off]);
        vx = attn_to_f32(vc[off]);
      }
      ks[row * kHdp + c] = kx;
      vs[row * kHdp + c] = vx;
    }
  }
};

}  // namespace lc::cuda
