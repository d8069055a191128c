// The f32 kernels of the SIMD tiers, written once over a vector type V (vec_avx2.h,
// vec_avx512.h) and instantiated by each tier's kernels_<tier>.cc: embed, rmsnorm, rope,
// kv_append, attention, swiglu, add, and matmul with f32 / f16 / bf16 weights. Meaning and
// layouts of every op: kernels.h. V provides W (f32 lanes), loads of f32 / f16 / bf16 / int8
// (full and first-n), FMA, horizontal sums, exp and rotate_pairs.
//
// Include only from files built with the tier's flags, which instantiate these templates
// with their own V. Everything is in an unnamed namespace and templated on the tier's V, so no
// instance is shared between tiers (see parallel.h).
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "../../core/nf4.h"
#include "../parallel.h"

namespace lc {
namespace {

// ---- weight rows as f32 vectors ------------------------------------------------------------

// WeightLoad<V, T>: W consecutive elements of a T row as f32 (all, or the first n of them).
template <class V, DType T>
struct WeightLoad;

template <class V>
struct WeightLoad<V, DType::F32> {
  using Elem = float;
  static typename V::F load(const Elem* p) { return V::load(p); }
  static typename V::F load(const Elem* p, int64_t n) { return V::load(p, n); }
};
template <class V>
struct WeightLoad<V, DType::F16> {
  using Elem = uint16_t;
  static typename V::F load(const Elem* p) { return V::load_f16(p); }
  static typename V::F load(const Elem* p, int64_t n) { return V::load_f16(p, n); }
};
template <class V>
struct WeightLoad<V, DType::BF16> {
  using Elem = uint16_t;
  static typename V::F load(const Elem* p) { return V::load_bf16(p); }
  static typename V::F load(const Elem* p, int64_t n) { return V::load_bf16(p, n); }
};

// One weight row as cols f32 values: the numbers core/dequant.h defines, bit for bit
// (products and sums rounded separately, as there).
template <class V>
void dequantize_row_simd(float* out, const Weight& w, int64_t r) {
  constexpr int W = V::W;
  const int64_t cols = w.cols;
  switch (w.dtype) {
    case DType::F32:
      std::memcpy(out, f32_row_of(w, r), size_t(cols) * sizeof(float));
      return;
    case DType::F16:
    case DType::BF16: {
      const uint16_t* src = u16_row_of(w, r);
      const bool f16 = w.dtype == DType::F16;
      int64_t c = 0;
      for (; c + W <= cols; c += W) V::store(out + c, f16 ? V::load_f16(src + c) : V::load_bf16(src + c));
      if (c < cols) V::store(out + c, f16 ? V::load_f16(src + c, cols - c) : V::load_bf16(src + c, cols - c), cols - c);
      return;
    }
    case DType::Q8_0: {
      const int8_t* codes = q8_codes_of(w, r);
      const uint16_t* scales = q8_scales_of(w, r);
      for (int64_t b = 0; b < cols / 32; b++) {
        const typename V::F d = V::set1(_cvtsh_ss(scales[b]));
        for (int64_t j = 0; j < 32; j += W) V::store(out + 32 * b + j, V::mul(V::load_i8(codes + 32 * b + j), d));
      }
      return;
    }
    case DType::INT4: {
      // per group of G weights: G/2 bytes, byte j = weight j (low nibble) | weight j + G/2 (high)
      const int64_t g = w.group, half = g / 2;
      const uint8_t* codes = int4_codes_of(w, r);
      const uint16_t* params = int4_params_of(w, r);
      for (int64_t gi = 0; gi < cols / g; gi++) {
        const float scale = _cvtsh_ss(params[2 * gi]), min = _cvtsh_ss(params[2 * gi + 1]);
        const uint8_t* q = codes + gi * half;
        float* o = out + gi * g;
        for (int64_t j = 0; j < half; j++) o[j] = float(q[j] & 0x0F) * scale + min;
        for (int64_t j = 0; j < half; j++) o[half + j] = float(q[j] >> 4) * scale + min;
      }
      return;
    }
    case DType::NF4:  // 16-entry table x f32 block scale (core/nf4.h)
      dequantize_row_nf4(out, int4_codes_of(w, r), w.nf4_scales(r), cols);
      return;
  }
}

template <class V>
void embed_simd(const CpuContext& ctx, float* out, const Weight& table, const int32_t* tokens, int64_t n) {
  parallel_for(ctx, n, table.cols, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) dequantize_row_simd<V>(out + i * table.cols, table, tokens[i]);
  });
}

// ---- rmsnorm ------------------------------------------------------------------------------

template <class V>
void rmsnorm_simd(const CpuContext& ctx, float* out, const float* x, const float* w, int64_t n, int64_t dim,
                  float eps) {
  using F = typename V::F;
  constexpr int W = V::W;
  parallel_for(ctx, n, 2 * dim, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) {
      const float* xi = x + i * dim;
      float* oi = out + i * dim;
      // sum of squares: 4 independent accumulators, then the tail
      F a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
      int64_t j = 0;
      for (; j + 4 * W <= dim; j += 4 * W) {
        const F v0 = V::load(xi + j), v1 = V::load(xi + j + W), v2 = V::load(xi + j + 2 * W), v3 = V::load(xi + j + 3 * W);
        a0 = V::fma(v0, v0, a0);
        a1 = V::fma(v1, v1, a1);
        a2 = V::fma(v2, v2, a2);
        a3 = V::fma(v3, v3, a3);
      }
      for (; j < dim; j += W) {
        const F v = V::load(xi + j, dim - j);  // zeros past the end
        a0 = V::fma(v, v, a0);
      }
      const float ss = V::hsum(V::add(V::add(a0, a1), V::add(a2, a3)));
      const float scale = float(1.0 / std::sqrt(double(ss) / double(dim) + double(eps)));
      // out = w * (scale * x), the reference's order of roundings
      const F s = V::set1(scale);
      for (j = 0; j + W <= dim; j += W) V::store(oi + j, V::mul(V::load(w + j), V::mul(s, V::load(xi + j))));
      if (j < dim) V::store(oi + j, V::mul(V::load(w + j, dim - j), V::mul(s, V::load(xi + j, dim - j))), dim - j);
    }
  });
}

// ---- rope ---------------------------------------------------------------------------------

// Bit-exact with the reference: the same products and sums, rounded the same way (no FMA).
template <class V>
void rope_simd(const CpuContext& ctx, float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t rope_dim,
               RopePairing pairing, const float* cos_sin) {
  using F = typename V::F;
  constexpr int W = V::W;
  const int64_t pairs = rope_dim / 2;
  constexpr int64_t kMaxPairs = 256;  // half pairing: cos / sin split into two stack arrays
  parallel_for(ctx, n, n_heads * rope_dim * 2, [&](int64_t i0, int64_t i1, int) {
    float cos_buf[kMaxPairs], sin_buf[kMaxPairs];
    for (int64_t i = i0; i < i1; i++) {
      const float* cs = cos_sin + i * pairs * 2;  // [pairs][cos, sin]
      if (pairing == RopePairing::Interleaved) {
        // x pairs (2p, 2p+1) line up with cs's (cos, sin): W/2 pairs per vector
        for (int64_t h = 0; h < n_heads; h++) {
          float* v = x + (i * n_heads + h) * head_dim;
          int64_t j = 0;
          for (; j + W <= rope_dim; j += W) V::store(v + j, V::rotate_pairs(V::load(v + j), V::load(cs + j)));
          if (j < rope_dim) {
            const int64_t m = rope_dim - j;
            V::store(v + j, V::rotate_pairs(V::load(v + j, m), V::load(cs + j, m)), m);
          }
        }
      } else {
        // pairs (p, p + pairs): cos / sin deinterleaved once per row (in chunks of kMaxPairs),
        // then whole vectors over each head's two halves
        for (int64_t p0 = 0; p0 < pairs; p0 += kMaxPairs) {
          const int64_t np = min_i64(kMaxPairs, pairs - p0);
          for (int64_t p = 0; p < np; p++) {
            cos_buf[p] = cs[2 * (p0 + p)];
            sin_buf[p] = cs[2 * (p0 + p) + 1];
          }
          for (int64_t h = 0; h < n_heads; h++) {
            float* lo = x + (i * n_heads + h) * head_dim + p0;
            float* hi = lo + pairs;
            for (int64_t p = 0; p < np; p += W) {
              const int64_t m = np - p < W ? np - p : W;
              const F c = V::load(cos_buf + p, m), s = V::load(sin_buf + p, m);
              const F x0 = V::load(lo + p, m), x1 = V::load(hi + p, m);
              V::store(lo + p, V::sub(V::mul_rounded(x0, c), V::mul_rounded(x1, s)), m);
              V::store(hi + p, V::add(V::mul_rounded(x0, s), V::mul_rounded(x1, c)), m);
            }
          }
        }
      }
    }
  });
}

// ---- kv_append ----------------------------------------------------------------------------

template <class V>
void kv_append_simd(const CpuContext& ctx, const KvLayer& cache, const float* k, const float* v, int64_t n,
                    int64_t pos) {
  constexpr int W = V::W;
  const int64_t d = cache.kv_dim;
  parallel_for(ctx, n, 4 * d, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) {
      const int64_t row = (pos + i) * d;
      if (cache.dtype == DType::F16) {
        for (int pass = 0; pass < 2; pass++) {
          const float* src = (pass == 0 ? k : v) + i * d;
          uint16_t* dst = static_cast<uint16_t*>(pass == 0 ? cache.k : cache.v) + row;
          int64_t j = 0;
          for (; j + W <= d; j += W) V::store_f16(dst + j, V::load(src + j));
          if (j < d) V::store_f16(dst + j, V::load(src + j, d - j), d - j);
        }
      } else {
        std::memcpy(static_cast<float*>(cache.k) + row, k + i * d, size_t(d) * sizeof(float));
        std::memcpy(static_cast<float*>(cache.v) + row, v + i * d, size_t(d) * sizeof(float));
      }
    }
  });
}

// ---- attention ----------------------------------------------------------------------------

// KV rows as f32 vectors.
template <class V, bool F16>
struct KvLoad {
  static typename V::F load(const void* base, int64_t at) {
    return F16 ? V::load_f16(static_cast<const uint16_t*>(base) + at) : V::load(static_cast<const float*>(base) + at);
  }
  static typename V::F load(const void* base, int64_t at, int64_t n) {
    return F16 ? V::load_f16(static_cast<const uint16_t*>(base) + at, n)
               : V::load(static_cast<const float*>(base) + at, n);
  }
};

// Prefetch distance along the KV rows, in rows: rows are kv_dim apart (8 KiB for an f16
// Llama 2 7B cache), so each is a new page the hardware prefetcher will not enter.
constexpr int64_t kKvPrefetchRows = 8;

// Prefetches bytes [at, at + len) of a KV row into L1.
inline void prefetch_span(const void* base, int64_t at_bytes, int64_t len_bytes) {
  const char* p = static_cast<const char*>(base) + at_bytes;
  for (int64_t o = 0; o < len_bytes; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
}

// scores[h][t] = (q_h . k_t) * scale for NH heads (q rows head_dim apart), for TB keys
// t0 .. t0 + TB - 1: TB x NH independent accumulators; each key vector loaded once for NH heads.
template <class V, bool F16, int NH, int TB>
void attention_scores_block(float* scores, int64_t len, int64_t t0, const float* q, const void* k, int64_t kv_dim,
                            int64_t kv_off, int64_t head_dim, float scale) {
  using F = typename V::F;
  using L = KvLoad<V, F16>;
  constexpr int W = V::W;
  F acc[TB][NH];
  for (int j = 0; j < TB; j++)
    for (int h = 0; h < NH; h++) acc[j][h] = V::zero();
  for (int64_t d = 0; d < head_dim; d += W) {
    const int64_t m = head_dim - d < W ? head_dim - d : W;
    F qv[NH];
    for (int h = 0; h < NH; h++) qv[h] = m == W ? V::load(q + h * head_dim + d) : V::load(q + h * head_dim + d, m);
    for (int j = 0; j < TB; j++) {
      const int64_t at = (t0 + j) * kv_dim + kv_off + d;
      const F kv = m == W ? L::load(k, at) : L::load(k, at, m);
      for (int h = 0; h < NH; h++) acc[j][h] = V::fma(qv[h], kv, acc[j][h]);
    }
  }
  for (int j = 0; j < TB; j++)
    for (int h = 0; h < NH; h++) scores[h * len + t0 + j] = V::hsum(acc[j][h]) * scale;
}

// All keys t < len, TB at a time (TB x NH ~ 8 chains hide the FMA latency), then one by one.
template <class V, bool F16, int NH>
void attention_scores(float* scores, int64_t len, const float* q, const void* k, int64_t kv_dim, int64_t kv_off,
                      int64_t head_dim, float scale) {
  constexpr int TB = NH >= 8 ? 1 : 8 / NH;
  const int64_t elem = F16 ? 2 : 4;
  int64_t t = 0;
  for (; t + TB <= len; t += TB) {
    for (int j = 0; j < TB; j++)
      if (t + j + kKvPrefetchRows < len)
        prefetch_span(k, ((t + j + kKvPrefetchRows) * kv_dim + kv_off) * elem, head_dim * elem);
    attention_scores_block<V, F16, NH, TB>(scores, len, t, q, k, kv_dim, kv_off, head_dim, scale);
  }
  for (; t < len; t++) attention_scores_block<V, F16, NH, 1>(scores, len, t, q, k, kv_dim, kv_off, head_dim, scale);
}

// out_h[d0 .. d0 + DB W) = inv_sum[h] * sum_t p[h][t] v_t[d0 ..] for NH heads: NH x DB
// accumulators stay in registers while the value rows stream past once. m: values in the
// last vector (< W only for a head_dim tail, with DB = 1).
template <class V, bool F16, int NH, int DB>
void attention_values_block(float* out, const float* p, const float* inv_sum, int64_t len, const void* v,
                            int64_t kv_dim, int64_t kv_off, int64_t head_dim, int64_t d0, int64_t m) {
  using F = typename V::F;
  using L = KvLoad<V, F16>;
  constexpr int W = V::W;
  const int64_t elem = F16 ? 2 : 4;
  F acc[NH][DB];
  for (int h = 0; h < NH; h++)
    for (int j = 0; j < DB; j++) acc[h][j] = V::zero();
  for (int64_t t = 0; t < len; t++) {
    if (t + kKvPrefetchRows < len)
      prefetch_span(v, ((t + kKvPrefetchRows) * kv_dim + kv_off + d0) * elem, (DB - 1) * W * elem + m * elem);
    const int64_t at = t * kv_dim + kv_off + d0;
    F vv[DB];
    for (int j = 0; j < DB; j++) vv[j] = m == W ? L::load(v, at + j * W) : L::load(v, at + j * W, m);
    for (int h = 0; h < NH; h++) {
      const F pv = V::set1(p[h * len + t]);
      for (int j = 0; j < DB; j++) acc[h][j] = V::fma(pv, vv[j], acc[h][j]);
    }
  }
  for (int h = 0; h < NH; h++)
    for (int j = 0; j < DB; j++) {
      float* o = out + h * head_dim + d0 + j * W;
      const F r = V::mul(acc[h][j], V::set1(inv_sum[h]));
      if (m == W) {
        V::store(o, r);
      } else {
        V::store(o, r, m);
      }
    }
}

// The whole head_dim: passes of DB full vectors (DB as large as the registers allow: one
// pass over the value rows for NH = 1 and 2 on avx512), then a partial vector if any.
template <class V, bool F16, int NH>
void attention_values(float* out, const float* p, const float* inv_sum, int64_t len, const void* v, int64_t kv_dim,
                      int64_t kv_off, int64_t head_dim) {
  constexpr int W = V::W;
  constexpr int DB = V::kAccRegs / NH >= 8 ? 8 : V::kAccRegs / NH >= 4 ? 4 : V::kAccRegs / NH >= 2 ? 2 : 1;
  const int64_t full = head_dim / W;
  int64_t j = 0;
  for (; j + DB <= full; j += DB) attention_values_block<V, F16, NH, DB>(out, p, inv_sum, len, v, kv_dim, kv_off, head_dim, j * W, W);
  for (; j < full; j++) attention_values_block<V, F16, NH, 1>(out, p, inv_sum, len, v, kv_dim, kv_off, head_dim, j * W, W);
  if (full * W < head_dim)
    attention_values_block<V, F16, NH, 1>(out, p, inv_sum, len, v, kv_dim, kv_off, head_dim, full * W, head_dim - full * W);
}

// s[t] = exp(s[t] - max(s)) for t < len; returns the sum.
template <class V>
float softmax_unnormalized(float* s, int64_t len) {
  using F = typename V::F;
  constexpr int W = V::W;
  float mx = s[0];
  int64_t t = 0;
  if (len >= W) {
    F m = V::load(s);
    for (t = W; t + W <= len; t += W) m = V::max(m, V::load(s + t));
    mx = V::hmax(m);
  }
  for (; t < len; t++) mx = s[t] > mx ? s[t] : mx;
  const F vmax = V::set1(mx);
  F sum = V::zero();
  for (t = 0; t + W <= len; t += W) {
    const F e = V::exp(V::sub(V::load(s + t), vmax));
    V::store(s + t, e);
    sum = V::add(sum, e);
  }
  float total = V::hsum(sum);
  if (t < len) {
    V::store(s + t, V::exp(V::sub(V::load(s + t, len - t), vmax)), len - t);
    for (; t < len; t++) total += s[t];
  }
  return total;
}

// One work item: query row with heads h0 .. h0 + nh - 1 sharing one KV head, keys t < len.
// scores: the thread's buffer of nh * len floats.
template <class V, bool F16, int NH>
void attention_group(float* out, const float* q, const KvLayer& cache, int64_t len, int64_t kv_off, int64_t head_dim,
                     float* scores) {
  const float scale = float(1.0 / std::sqrt(double(head_dim)));
  attention_scores<V, F16, NH>(scores, len, q, cache.k, cache.kv_dim, kv_off, head_dim, scale);
  float inv_sum[NH];
  for (int h = 0; h < NH; h++) inv_sum[h] = 1.0f / softmax_unnormalized<V>(scores + h * len, len);
  attention_values<V, F16, NH>(out, scores, inv_sum, len, cache.v, cache.kv_dim, kv_off, head_dim);
}

// nh heads in register-sized groups of 8, 4, 2, 1 (kv_mul 1, 2, 4, 8 take one group).
template <class V, bool F16>
void attention_heads(float* out, const float* q, const KvLayer& cache, int64_t len, int64_t kv_off, int64_t nh,
                     int64_t head_dim, float* scores) {
  int64_t h = 0;
  while (h < nh) {
    const int64_t left = nh - h;
    float* o = out + h * head_dim;
    const float* qh = q + h * head_dim;
    if (left >= 8) {
      attention_group<V, F16, 8>(o, qh, cache, len, kv_off, head_dim, scores);
      h += 8;
    } else if (left >= 4) {
      attention_group<V, F16, 4>(o, qh, cache, len, kv_off, head_dim, scores);
      h += 4;
    } else if (left >= 2) {
      attention_group<V, F16, 2>(o, qh, cache, len, kv_off, head_dim, scores);
      h += 2;
    } else {
      attention_group<V, F16, 1>(o, qh, cache, len, kv_off, head_dim, scores);
      h += 1;
    }
  }
}

template <class V>
void attention_simd(const CpuContext& ctx, float* out, const float* q, const KvLayer& cache, int64_t n, int64_t pos,
                    int64_t n_heads, int64_t n_kv_heads, int64_t head_dim) {
  const int64_t kv_mul = n_heads / n_kv_heads;
  const AttentionSplit split = split_attention(pool_threads(ctx), n, n_heads, n_kv_heads);
  const int nth = threads_for(ctx, split.items, n * n_heads * (pos + n) * head_dim * 2);
  ScratchCarver carver(ctx.scratch);
  const size_t per_thread = attention_thread_bytes(split.part_heads, pos + n);
  if (!carver.fits(size_t(nth) * per_thread)) {  // scratch smaller than scratch_bytes() promised
    cpu_kernels_reference().attention(ctx, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim);
    return;
  }
  uint8_t* base = carver.take(size_t(nth) * per_thread);
  run_threads(ctx, nth, [&](int ith, int nt) {
    float* scores = reinterpret_cast<float*>(base + size_t(ith) * per_thread);
    for (int64_t it = ith; it < split.items; it += nt) {  // strided: rows late in the prompt cost more
      const AttentionItem a = attention_item(split, it, n_kv_heads, kv_mul);
      const int64_t off = (a.i * n_heads + a.h0) * head_dim;
      const int64_t len = pos + a.i + 1;
      if (cache.dtype == DType::F16) {
        attention_heads<V, true>(out + off, q + off, cache, len, a.g * head_dim, a.nh, head_dim, scores);
      } else {
        attention_heads<V, false>(out + off, q + off, cache, len, a.g * head_dim, a.nh, head_dim, scores);
      }
    }
  });
}

// ---- swiglu, add --------------------------------------------------------------------------

constexpr int64_t kElementChunk = 4096;  // elementwise ops split work in chunks of this many

template <class V>
void swiglu_simd(const CpuContext& ctx, float* out, const float* gate, const float* up, int64_t count) {
  using F = typename V::F;
  constexpr int W = V::W;
  parallel_for(ctx, ceil_div(count, kElementChunk), kElementChunk * 16, [&](int64_t c0, int64_t c1, int) {
    const int64_t end = min_i64(c1 * kElementChunk, count);
    // silu(g) * up = g / (1 + exp(-g)) * up, in the reference's order
    auto swiglu = [](F g, F u) { return V::mul(V::div(g, V::add(V::set1(1.0f), V::exp(V::sub(V::zero(), g)))), u); };
    int64_t j = c0 * kElementChunk;
    for (; j + W <= end; j += W) V::store(out + j, swiglu(V::load(gate + j), V::load(up + j)));
    if (j < end) V::store(out + j, swiglu(V::load(gate + j, end - j), V::load(up + j, end - j)), end - j);
  });
}

template <class V>
void add_simd(const CpuContext& ctx, float* out, const float* a, const float* b, int64_t count) {
  constexpr int W = V::W;
  parallel_for(ctx, ceil_div(count, kElementChunk), kElementChunk, [&](int64_t c0, int64_t c1, int) {
    const int64_t end = min_i64(c1 * kElementChunk, count);
    int64_t j = c0 * kElementChunk;
    for (; j + W <= end; j += W) V::store(out + j, V::add(V::load(a + j), V::load(b + j)));
    if (j < end) V::store(out + j, V::add(V::load(a + j, end - j), V::load(b + j, end - j)), end - j);
  });
}

// ---- matmul, f32 / f16 / bf16 weights -----------------------------------------------------

// Software prefetch of weight rows, kPrefetchBytes ahead of the loads, into L2: decode
// streams every weight byte from memory once, and with a few instructions per byte (f16
// conversion, int4 unpacking) the hardware prefetcher alone runs too close behind (measured
// on Zen 5: +20% for f16 / q8_0 / int4 at one thread).
constexpr int64_t kPrefetchBytes = 2048;

template <int MR, class Elem>
void prefetch_rows(const Elem* const* rows, int64_t at) {
  for (int m = 0; m < MR; m++) _mm_prefetch(reinterpret_cast<const char*>(rows[m] + at) + kPrefetchBytes, _MM_HINT_T1);
}

// One register tile: out[r][m] (+)= dot(weight row m, activation row r) over columns
// k0 .. k1 - 1, for MR weight rows w[m] and NR activation rows x + r * x_stride.
// out[r][m] is out[r * out_stride + m]. MR x NR accumulators; each weight vector is
// converted once and used by NR rows, each activation vector by MR rows.
template <class V, DType T, int MR, int NR>
void float_tile(float* out, int64_t out_stride, const typename WeightLoad<V, T>::Elem* const* w, const float* x,
                int64_t x_stride, int64_t k0, int64_t k1, bool accumulate) {
  using F = typename V::F;
  using L = WeightLoad<V, T>;
  constexpr int W = V::W;
  F acc[MR][NR];
  for (int m = 0; m < MR; m++)
    for (int r = 0; r < NR; r++) acc[m][r] = V::zero();
  int64_t c = k0;
  for (; c + W <= k1; c += W) {
    F wv[MR];
    if (((c * int64_t(sizeof(*w[0]))) & 63) == 0) prefetch_rows<MR>(w, c);
    for (int m = 0; m < MR; m++) wv[m] = L::load(w[m] + c);
    for (int r = 0; r < NR; r++) {
      const F xv = V::load(x + r * x_stride + c);
      for (int m = 0; m < MR; m++) acc[m][r] = V::fma(wv[m], xv, acc[m][r]);
    }
  }
  if (c < k1) {  // column tail: partial loads fill the rest with zeros
    const int64_t left = k1 - c;
    F wv[MR];
    for (int m = 0; m < MR; m++) wv[m] = L::load(w[m] + c, left);
    for (int r = 0; r < NR; r++) {
      const F xv = V::load(x + r * x_stride + c, left);
      for (int m = 0; m < MR; m++) acc[m][r] = V::fma(wv[m], xv, acc[m][r]);
    }
  }
  for (int r = 0; r < NR; r++)
    for (int m = 0; m < MR; m++) {
      const float s = V::hsum(acc[m][r]);
      float& o = out[r * out_stride + m];
      o = accumulate ? o + s : s;
    }
}

// Calls float_tile<MR, nr> for a runtime nr in 1 .. NR.
template <class V, DType T, int MR, int NR>
void float_tile_n(int64_t nr, float* out, int64_t out_stride, const typename WeightLoad<V, T>::Elem* const* w,
                  const float* x, int64_t x_stride, int64_t k0, int64_t k1, bool accumulate) {
  if constexpr (NR > 1) {
    if (nr < NR) {
      float_tile_n<V, T, MR, NR - 1>(nr, out, out_stride, w, x, x_stride, k0, k1, accumulate);
      return;
    }
  }
  float_tile<V, T, MR, NR>(out, out_stride, w, x, x_stride, k0, k1, accumulate);
}

// out[n][rows] = x[n][cols] . W^T for f32 / f16 / bf16 W. Threads split the weight rows (in
// tiles of MR rows). With several activation rows the work is blocked so that a block of
// activations (up to 64 rows x 2048 columns, 512 KiB) stays in L2 while the thread's weight
// tiles stream past it; partial sums over column blocks accumulate in out.
template <class V, DType T>
void matmul_float_simd(const CpuContext& ctx, float* out, const float* x, const Weight& w, int64_t n) {
  using Elem = typename WeightLoad<V, T>::Elem;
  constexpr int MR = V::kTileRows, NR = V::kTileActs;
  const int64_t rows = w.rows, cols = w.cols;
  const Elem* data = reinterpret_cast<const Elem*>(w.data);
  const int64_t act_block = n <= NR ? n : 64;
  const int64_t col_block = n <= NR ? cols : 2048;
  const int64_t tiles = ceil_div(rows, MR);
  parallel_for(ctx, tiles, MR * cols * n, [&](int64_t t0, int64_t t1, int) {
    for (int64_t i0 = 0; i0 < n; i0 += act_block) {
      const int64_t i1 = min_i64(i0 + act_block, n);
      for (int64_t k0 = 0; k0 < cols; k0 += col_block) {
        const int64_t k1 = min_i64(k0 + col_block, cols);
        for (int64_t t = t0; t < t1; t++) {
          const int64_t r0 = t * MR, mr = min_i64(MR, rows - r0);
          for (int64_t i = i0; i < i1; i += NR) {
            const int64_t nr = min_i64(NR, i1 - i);
            float* o = out + i * rows + r0;
            const float* xi = x + i * cols;
            if (mr == MR) {
              const Elem* wr[MR];
              for (int m = 0; m < MR; m++) wr[m] = data + (r0 + m) * cols;
              float_tile_n<V, T, MR, NR>(nr, o, rows, wr, xi, cols, k0, k1, k0 > 0);
            } else {
              for (int64_t m = 0; m < mr; m++) {  // the last rows of the matrix, one at a time
                const Elem* wr[1] = {data + (r0 + m) * cols};
                float_tile_n<V, T, 1, NR>(nr, o + m, rows, wr, xi, cols, k0, k1, k0 > 0);
              }
            }
          }
        }
      }
    }
  });
}

}  // namespace
}  // namespace lc
