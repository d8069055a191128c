// How the fast CPU tiers split work over the thread pool and carve the session scratch.
// Shared by kernels_generic.cc and the SIMD tiers (native/cpu/simd/).
//
// Everything here sits in an unnamed namespace on purpose: the SIMD tiers compile this header
// with AVX2 / AVX-512 flags, and an ordinary inline function emitted out of line there could be
// the copy the linker keeps for every tier (an AVX-512 instruction in the generic path). With
// internal linkage each translation unit keeps its own copy, built with its own flags. For the
// same reason the SIMD tiers avoid the inline helpers of core/half.h and Weight's accessors and
// use the ones below.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels.h"

namespace lc {
namespace {

inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline size_t align64(size_t n) { return (n + 63) / 64 * 64; }

// The ith of nth near-equal contiguous parts of [0, n) (as core/thread_pool.h split_range).
inline Range part_of(int64_t n, int ith, int nth) {
  const int64_t base = n / nth, extra = n % nth;
  const int64_t begin = ith * base + (ith < extra ? ith : extra);
  return {begin, begin + base + (ith < extra ? 1 : 0)};
}

inline int pool_threads(const CpuContext& ctx) { return ctx.pool != nullptr ? ctx.pool->size() : 1; }

// Below this much work (roughly: multiply-adds or element visits) a job runs on the calling
// thread alone: waking the pool costs a few microseconds, which is what ~10^5 simple element
// operations cost. Each extra thread must bring at least this much work.
constexpr int64_t kMinWorkPerThread = 1 << 16;

// Threads worth using for `work` units of work split into `items` indivisible pieces.
inline int threads_for(const CpuContext& ctx, int64_t items, int64_t work) {
  const int64_t by_work = work / kMinWorkPerThread;
  const int64_t n = min_i64(min_i64(pool_threads(ctx), items), by_work);
  return n < 1 ? 1 : int(n);
}

// Calls fn(ith, nth) on nth threads of the pool (nth <= pool size; the calling thread is 0),
// or directly when nth == 1. Threads of the pool beyond nth do nothing.
template <class F>
void run_threads(const CpuContext& ctx, int nth, F&& fn) {
  if (nth <= 1 || ctx.pool == nullptr) {
    fn(0, 1);
    return;
  }
  ctx.pool->run([&](int ith, int) {
    if (ith < nth) fn(ith, nth);
  });
}

// Splits [0, items) into contiguous ranges, one per thread, and calls fn(begin, end, ith).
// cost_per_item sizes how many threads are worth waking (see threads_for).
template <class F>
void parallel_for(const CpuContext& ctx, int64_t items, int64_t cost_per_item, F&& fn) {
  if (items <= 0) return;
  const int nth = threads_for(ctx, items, items * cost_per_item);
  run_threads(ctx, nth, [&](int ith, int n) {
    const Range r = part_of(items, ith, n);
    if (r.begin < r.end) fn(r.begin, r.end, ith);
  });
}

// ---- scratch --------------------------------------------------------------------------
// The executor allocates scratch_bytes(shape) once per session. Every op lays its scratch
// out from its own call's sizes, with each part's size monotone in those sizes, so a call
// within the session's shape fits in what scratch_bytes reserved.

inline uint8_t* align_ptr64(uint8_t* p) {
  return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63));
}

// A bump allocator over the scratch: 64-byte aligned pieces; ok() is false when the scratch
// is too small for this call (the caller then falls back to a path that needs none).
struct ScratchCarver {
  uint8_t* base;
  uint8_t* cur;
  uint8_t* end;
  explicit ScratchCarver(const CpuScratch& s)
      : base(s.data),
        cur(s.data == nullptr ? nullptr : align_ptr64(s.data)),
        end(s.data == nullptr ? nullptr : s.data + s.nbytes) {}
  bool fits(size_t bytes) const { return cur != nullptr && cur <= end && size_t(end - cur) >= bytes; }
  uint8_t* take(size_t bytes) {  // call only after fits(bytes)
    uint8_t* p = cur;
    cur += align64(bytes);
    return p;
  }
};

// ---- weight layouts (core/dtype.h), as plain pointer arithmetic --------------------------

inline const int8_t* q8_codes_of(const Weight& w, int64_t r) {
  return reinterpret_cast<const int8_t*>(w.data) + size_t(r) * size_t(w.cols);
}
inline const uint16_t* q8_scales_of(const Weight& w, int64_t r) {
  return reinterpret_cast<const uint16_t*>(w.data + size_t(w.rows) * size_t(w.cols)) + size_t(r) * size_t(w.cols / 32);
}
inline const uint8_t* int4_codes_of(const Weight& w, int64_t r) { return w.data + size_t(r) * size_t(w.cols / 2); }
inline const uint16_t* int4_params_of(const Weight& w, int64_t r) {
  return reinterpret_cast<const uint16_t*>(w.data + size_t(w.rows) * size_t(w.cols / 2)) +
         size_t(r) * size_t(w.cols / w.group) * 2;
}
inline const uint16_t* u16_row_of(const Weight& w, int64_t r) {
  return reinterpret_cast<const uint16_t*>(w.data) + size_t(r) * size_t(w.cols);
}
inline const float* f32_row_of(const Weight& w, int64_t r) {
  return reinterpret_cast<const float*>(w.data) + size_t(r) * size_t(w.cols);
}

// ---- quantized activations (matmul with Q8_0 / INT4 weights in the SIMD tiers) ----------
// Each activation row is quantized once per call to int8 blocks of 32 (round to nearest,
// d = absmax / 127) and stored as one "qrow":
//   int8  q[cols]        codes
//   float d[cols/32]     block scales
//   float t[2 cols/32]   the vector the weight's f16 parameters are dotted with for the
//                        min / offset term (simd/quant_matmul.h), in the parameters' layout
// rows are qrow_bytes(cols) apart (64-byte multiple).
inline size_t qrow_bytes(int64_t cols) { return align64(size_t(cols) + 12 * size_t(cols / 32)); }

// One thread's repacked panel of 16 weight rows for the avx512 prefill GEMM
// (simd/quant_gemm_avx512.h): codes 16 x cols bytes, then f32 scales and mins per 32-block.
inline size_t gemm_panel_bytes(int64_t cols) {
  return align64(size_t(16 * cols)) + 2 * align64(size_t(64 * (cols / 32)));
}

// The most query heads one attention work item handles at once (one KV head's group, split
// in parts of at most this many heads): bounds the per-thread score buffer.
constexpr int64_t kMaxHeadsPerItem = 8;

// Per-thread attention scratch: scores of up to kMaxHeadsPerItem heads over seq_len keys.
inline size_t attention_thread_bytes(int64_t heads, int64_t seq_len) {
  return align64(size_t(min_i64(heads, kMaxHeadsPerItem)) * size_t(seq_len) * sizeof(float));
}

// Attention work items: (query row i, KV head g, part p of g's query heads). A KV head's
// group of kv_mul query heads is cut into parts of at most kMaxHeadsPerItem heads, and into
// more parts when there are fewer (row, KV head) pairs than threads (decode with few KV heads).
struct AttentionSplit {
  int64_t parts;       // parts per KV head
  int64_t part_heads;  // query heads per part (the last part may have fewer)
  int64_t items;       // n * n_kv_heads * parts
};

inline AttentionSplit split_attention(int n_threads, int64_t n, int64_t n_heads, int64_t n_kv_heads) {
  const int64_t kv_mul = n_heads / n_kv_heads;
  int64_t parts = ceil_div(kv_mul, kMaxHeadsPerItem);
  const int64_t want = ceil_div(n_threads, n * n_kv_heads);
  if (want > parts) parts = min_i64(kv_mul, want);
  const int64_t part_heads = ceil_div(kv_mul, parts);
  parts = ceil_div(kv_mul, part_heads);  // no empty part
  return {parts, part_heads, n * n_kv_heads * parts};
}

// Item it of a split: the query row, the KV head, the first query head and how many.
struct AttentionItem {
  int64_t i, g, h0, nh;
};

inline AttentionItem attention_item(const AttentionSplit& s, int64_t it, int64_t n_kv_heads, int64_t kv_mul) {
  AttentionItem a;
  a.i = it / (n_kv_heads * s.parts);
  a.g = (it / s.parts) % n_kv_heads;
  a.h0 = a.g * kv_mul + (it % s.parts) * s.part_heads;
  a.nh = min_i64(s.part_heads, (a.g + 1) * kv_mul - a.h0);
  return a;
}

// Weight rows one matmul tile covers at most (the SIMD tiers' MR).
constexpr int64_t kMaxTileRows = 4;

// Per-thread matmul scratch of the generic tier: one weight row dequantized to f32.
inline size_t generic_matmul_thread_bytes(int64_t cols) { return align64(size_t(cols) * sizeof(float)); }

// The scratch every fast tier asks for: the largest of its ops' needs (one op runs at a time).
inline size_t fast_tier_scratch_bytes(const CpuScratchShape& s) {
  const size_t nth = size_t(s.n_threads < 1 ? 1 : s.n_threads);
  const size_t matmul_generic = nth * generic_matmul_thread_bytes(s.max_cols);
  const size_t matmul_quant = align64(size_t(s.max_rows) * qrow_bytes(s.max_cols)) + nth * gemm_panel_bytes(s.max_cols);
  const size_t attention = nth * attention_thread_bytes(s.max_heads, s.max_seq_len);
  size_t need = matmul_generic;
  if (matmul_quant > need) need = matmul_quant;
  if (attention > need) need = attention;
  return need + 64;  // room to align the start
}

}  // namespace
}  // namespace lc
