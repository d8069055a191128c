// The generic tier: portable C++17, no intrinsics, multithreaded over ctx.pool. Inner loops
// are contiguous over floats with fixed-width accumulator arrays, so g++ -O3 turns them into
// SSE / NEON code; this is the fast path where the SIMD tiers are not available (arm64, old
// x86) and the fallback of the SIMD tiers for shapes they do not specialize.
//
// Layouts and meaning of every op: kernels.h; weight storage: core/dtype.h.
#include <cmath>
#include <cstring>

#include "../core/half.h"
#include "../core/nf4.h"
#include "ops/ops.h"
#include "parallel.h"

namespace lc {

namespace {

// ---- element conversions ----------------------------------------------------------------

// f16 -> f32 without branches (exact, like core/half.h f16_to_f32), so loops over it vectorize:
// 32-bit integer operations, the subnormal case by an int -> float conversion computed for every
// value and chosen with a mask (a ?: on it would make g++ keep a branch under -ftrapping-math).
inline float f16_to_f32_select(uint16_t h) {
  const int32_t em = int32_t(h & 0x7FFF);                         // exponent and mantissa
  int32_t bits = (em << 13) + (112 << 23);                        // normal: rebias 15 -> 127
  bits += em >= 0x7C00 ? (112 << 23) : 0;                         // inf / nan: exponent 255
  const int32_t sub = int32_t(f32_to_bits(float(em) * (1.0f / 16777216.0f)));  // em * 2^-24
  const int32_t is_sub = -int32_t(em < 0x0400);
  bits = (sub & is_sub) | (bits & ~is_sub);
  return bits_to_f32(uint32_t(bits) | (uint32_t(h & 0x8000) << 16));
}

// One weight row r as cols f32 values (the numbers core/dequant.h defines).
void dequantize_row_generic(float* out, const Weight& w, int64_t r) {
  const int64_t cols = w.cols;
  switch (w.dtype) {
    case DType::F32:
      std::memcpy(out, f32_row_of(w, r), size_t(cols) * sizeof(float));
      return;
    case DType::F16: {
      const uint16_t* src = u16_row_of(w, r);
      for (int64_t c = 0; c < cols; c++) out[c] = f16_to_f32_select(src[c]);
      return;
    }
    case DType::BF16: {
      const uint16_t* src = u16_row_of(w, r);
      for (int64_t c = 0; c < cols; c++) out[c] = bits_to_f32(uint32_t(src[c]) << 16);
      return;
    }
    case DType::Q8_0: {
      // codes int8 [cols], one f16 scale per 32 codes
      const int8_t* codes = q8_codes_of(w, r);
      const uint16_t* scales = q8_scales_of(w, r);
      for (int64_t b = 0; b < cols / 32; b++) {
        const float d = f16_to_f32_select(scales[b]);
        for (int64_t j = 0; j < 32; j++) out[32 * b + j] = float(codes[32 * b + j]) * d;
      }
      return;
    }
    case DType::INT4: {
      // per group of G weights: G/2 bytes, byte j = weight j (low nibble) | weight j + G/2 (high)
      const int64_t g = w.group, half = g / 2;
      const uint8_t* codes = int4_codes_of(w, r);
      const uint16_t* params = int4_params_of(w, r);
      for (int64_t gi = 0; gi < cols / g; gi++) {
        const float scale = f16_to_f32_select(params[2 * gi]), min = f16_to_f32_select(params[2 * gi + 1]);
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

// ---- exp / silu -------------------------------------------------------------------------

// exp(x) for f32 with relative error ~1e-7: x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-7
// polynomial (Cephes coefficients), 2^n built in the exponent bits. Branch-free: vectorizes.
inline float exp_approx(float x) {
  x = x < -87.336544f ? -87.336544f : x;      // exp underflows to the smallest normal below
  x = x > 88.376259f ? 88.376259f : x;        // 127.5 ln 2: keeps 2^n finite
  const float t = x * 1.44269504088896341f;
  const float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 * 2^23 trick)
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * bits_to_f32(uint32_t(int32_t(n) + 127) << 23);
}

// ---- ops --------------------------------------------------------------------------------

void embed_generic(const CpuContext& ctx, float* out, const Weight& table, const int32_t* tokens, int64_t n) {
  parallel_for(ctx, n, table.cols, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) dequantize_row_generic(out + i * table.cols, table, tokens[i]);
  });
}

void rmsnorm_generic(const CpuContext& ctx, float* out, const float* x, const float* w, int64_t n, int64_t dim,
                     float eps) {
  parallel_for(ctx, n, 2 * dim, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) {
      const float* xi = x + i * dim;
      float* oi = out + i * dim;
      float acc[16] = {};  // 16 partial sums of squares
      int64_t j = 0;
      for (; j + 16 <= dim; j += 16)
        for (int k = 0; k < 16; k++) acc[k] += xi[j + k] * xi[j + k];
      float ss = 0.0f;
      for (; j < dim; j++) ss += xi[j] * xi[j];
      for (int k = 0; k < 16; k++) ss += acc[k];
      const float scale = float(1.0 / std::sqrt(double(ss) / double(dim) + double(eps)));
      for (j = 0; j < dim; j++) oi[j] = w[j] * (scale * xi[j]);
    }
  });
}

// out[r * out_stride] = dot(w, x[r]) for NR activation rows x[r] = x + r * x_stride.
// Each weight value is loaded once for NR rows; LANES partial sums per row.
template <int NR>
void dot_rows(float* out, int64_t out_stride, const float* w, const float* x, int64_t x_stride, int64_t cols) {
  constexpr int LANES = NR == 1 ? 16 : 8;
  float acc[NR][LANES] = {};
  int64_t c = 0;
  for (; c + LANES <= cols; c += LANES)
    for (int r = 0; r < NR; r++)
      for (int j = 0; j < LANES; j++) acc[r][j] += w[c + j] * x[r * x_stride + c + j];
  for (int r = 0; r < NR; r++) {
    float s = 0.0f;
    for (int64_t k = c; k < cols; k++) s += w[k] * x[r * x_stride + k];
    for (int j = 0; j < LANES; j++) s += acc[r][j];
    out[r * out_stride] = s;
  }
}

// out[n][rows] = x[n][cols] . W^T. Threads split the weight rows; each weight row is made f32
// once (dequantized into the thread's scratch, or read in place for F32) and dotted with all
// n activation rows, 4 at a time.
void matmul_generic(const CpuContext& ctx, float* out, const float* x, const Weight& w, int64_t n) {
  const int64_t rows = w.rows, cols = w.cols;
  const int nth = threads_for(ctx, rows, rows * cols * n);
  ScratchCarver carver(ctx.scratch);
  const size_t per_thread = generic_matmul_thread_bytes(cols);
  if (w.dtype != DType::F32 && !carver.fits(size_t(nth) * per_thread)) {
    matmul_cpu(ctx, out, x, w, n);  // scratch smaller than scratch_bytes() promised: stay correct
    return;
  }
  uint8_t* thread_base = w.dtype != DType::F32 ? carver.take(size_t(nth) * per_thread) : nullptr;
  run_threads(ctx, nth, [&](int ith, int nt) {
    const Range rr = part_of(rows, ith, nt);
    float* buf = thread_base != nullptr ? reinterpret_cast<float*>(thread_base + size_t(ith) * per_thread) : nullptr;
    for (int64_t r = rr.begin; r < rr.end; r++) {
      const float* wr = f32_row_of(w, r);
      if (w.dtype != DType::F32) {
        dequantize_row_generic(buf, w, r);
        wr = buf;
      }
      int64_t i = 0;
      for (; i + 4 <= n; i += 4) dot_rows<4>(out + i * rows + r, rows, wr, x + i * cols, cols, cols);
      switch (n - i) {
        case 3: dot_rows<3>(out + i * rows + r, rows, wr, x + i * cols, cols, cols); break;
        case 2: dot_rows<2>(out + i * rows + r, rows, wr, x + i * cols, cols, cols); break;
        case 1: dot_rows<1>(out + i * rows + r, rows, wr, x + i * cols, cols, cols); break;
        default: break;
      }
    }
  });
}

void rope_generic(const CpuContext& ctx, float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t rope_dim,
                  RopePairing pairing, const float* cos_sin) {
  const int64_t pairs = rope_dim / 2;
  parallel_for(ctx, n, n_heads * rope_dim * 2, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) {
      const float* cs = cos_sin + i * pairs * 2;  // [pairs][cos, sin]
      for (int64_t h = 0; h < n_heads; h++) {
        float* v = x + (i * n_heads + h) * head_dim;
        if (pairing == RopePairing::Interleaved) {
          // pair p is (v[2p], v[2p+1]): the same stride as cs
          for (int64_t p = 0; p < pairs; p++) {
            const float c = cs[2 * p], s = cs[2 * p + 1];
            const float x0 = v[2 * p], x1 = v[2 * p + 1];
            v[2 * p] = x0 * c - x1 * s;
            v[2 * p + 1] = x0 * s + x1 * c;
          }
        } else {
          // pair p is (v[p], v[p + pairs]): two contiguous halves
          float* lo = v;
          float* hi = v + pairs;
          for (int64_t p = 0; p < pairs; p++) {
            const float c = cs[2 * p], s = cs[2 * p + 1];
            const float x0 = lo[p], x1 = hi[p];
            lo[p] = x0 * c - x1 * s;
            hi[p] = x0 * s + x1 * c;
          }
        }
      }
    }
  });
}

void kv_append_generic(const CpuContext& ctx, const KvLayer& cache, const float* k, const float* v, int64_t n,
                       int64_t pos) {
  const int64_t d = cache.kv_dim;
  parallel_for(ctx, n, 8 * d, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) {
      const int64_t row = (pos + i) * d;
      if (cache.dtype == DType::F16) {
        uint16_t* kd = static_cast<uint16_t*>(cache.k) + row;
        uint16_t* vd = static_cast<uint16_t*>(cache.v) + row;
        for (int64_t j = 0; j < d; j++) kd[j] = f32_to_f16(k[i * d + j]);
        for (int64_t j = 0; j < d; j++) vd[j] = f32_to_f16(v[i * d + j]);
      } else {
        std::memcpy(static_cast<float*>(cache.k) + row, k + i * d, size_t(d) * sizeof(float));
        std::memcpy(static_cast<float*>(cache.v) + row, v + i * d, size_t(d) * sizeof(float));
      }
    }
  });
}

// Attention over one work item: query row i, query heads h0 .. h0 + nh - 1 (all reading the
// same KV head), keys 0 .. len - 1. scores is [nh][len]. K and V rows are read once per item
// and used by all its heads; f16 rows are converted in chunks of kChunk values.
constexpr int64_t kChunk = 64;

void attention_item_generic(float* out, const float* q, const KvLayer& cache, int64_t len, int64_t kv_off,
                            int64_t nh, int64_t head_dim, float* scores) {
  const bool f16 = cache.dtype == DType::F16;
  const int64_t kv_dim = cache.kv_dim;
  const float scale = float(1.0 / std::sqrt(double(head_dim)));
  float tmp[kChunk];

  // scores[h][t] = q_h . k_t / sqrt(head_dim)
  for (int64_t t = 0; t < len; t++) {
    float dots[kMaxHeadsPerItem] = {};
    for (int64_t d0 = 0; d0 < head_dim; d0 += kChunk) {
      const int64_t m = min_i64(kChunk, head_dim - d0);
      const float* kr;
      if (f16) {
        const uint16_t* src = static_cast<const uint16_t*>(cache.k) + t * kv_dim + kv_off + d0;
        for (int64_t j = 0; j < m; j++) tmp[j] = f16_to_f32_select(src[j]);
        kr = tmp;
      } else {
        kr = static_cast<const float*>(cache.k) + t * kv_dim + kv_off + d0;
      }
      for (int64_t h = 0; h < nh; h++) {
        const float* qh = q + h * head_dim + d0;
        float acc[8] = {};
        int64_t j = 0;
        for (; j + 8 <= m; j += 8)
          for (int u = 0; u < 8; u++) acc[u] += qh[j + u] * kr[j + u];
        for (; j < m; j++) acc[0] += qh[j] * kr[j];
        for (int u = 0; u < 8; u++) dots[h] += acc[u];
      }
    }
    for (int64_t h = 0; h < nh; h++) scores[h * len + t] = dots[h] * scale;
  }

  // softmax of each head's scores (unnormalized; 1/sum applied to the output)
  float inv_sum[kMaxHeadsPerItem];
  for (int64_t h = 0; h < nh; h++) {
    float* s = scores + h * len;
    float mx = s[0];
    for (int64_t t = 1; t < len; t++) mx = s[t] > mx ? s[t] : mx;
    for (int64_t t = 0; t < len; t++) s[t] = exp_approx(s[t] - mx);
    float part[8] = {};  // the sum in 8 lanes, so both loops vectorize
    int64_t t = 0;
    for (; t + 8 <= len; t += 8)
      for (int u = 0; u < 8; u++) part[u] += s[t + u];
    float sum = 0.0f;
    for (; t < len; t++) sum += s[t];
    for (int u = 0; u < 8; u++) sum += part[u];
    inv_sum[h] = 1.0f / sum;
  }

  // out_h = sum_t p_h[t] v_t
  for (int64_t h = 0; h < nh; h++) std::memset(out + h * head_dim, 0, size_t(head_dim) * sizeof(float));
  for (int64_t t = 0; t < len; t++) {
    for (int64_t d0 = 0; d0 < head_dim; d0 += kChunk) {
      const int64_t m = min_i64(kChunk, head_dim - d0);
      const float* vr;
      if (f16) {
        const uint16_t* src = static_cast<const uint16_t*>(cache.v) + t * kv_dim + kv_off + d0;
        for (int64_t j = 0; j < m; j++) tmp[j] = f16_to_f32_select(src[j]);
        vr = tmp;
      } else {
        vr = static_cast<const float*>(cache.v) + t * kv_dim + kv_off + d0;
      }
      for (int64_t h = 0; h < nh; h++) {
        const float p = scores[h * len + t];
        float* oh = out + h * head_dim + d0;
        for (int64_t j = 0; j < m; j++) oh[j] += p * vr[j];
      }
    }
  }
  for (int64_t h = 0; h < nh; h++)
    for (int64_t d = 0; d < head_dim; d++) out[h * head_dim + d] *= inv_sum[h];
}

void attention_generic(const CpuContext& ctx, float* out, const float* q, const KvLayer& cache, int64_t n, int64_t pos,
                       int64_t n_heads, int64_t n_kv_heads, int64_t head_dim) {
  const int64_t kv_mul = n_heads / n_kv_heads;
  const AttentionSplit split = split_attention(pool_threads(ctx), n, n_heads, n_kv_heads);
  const int nth = threads_for(ctx, split.items, n * n_heads * (pos + n) * head_dim * 2);
  ScratchCarver carver(ctx.scratch);
  const size_t per_thread = attention_thread_bytes(split.part_heads, pos + n);
  if (!carver.fits(size_t(nth) * per_thread)) {
    attention_cpu(ctx, out, q, cache, n, pos, n_heads, n_kv_heads, head_dim);
    return;
  }
  uint8_t* base = carver.take(size_t(nth) * per_thread);
  run_threads(ctx, nth, [&](int ith, int nt) {
    float* scores = reinterpret_cast<float*>(base + size_t(ith) * per_thread);
    for (int64_t it = ith; it < split.items; it += nt) {  // strided: rows late in the prompt cost more
      const AttentionItem a = attention_item(split, it, n_kv_heads, kv_mul);
      const int64_t off = (a.i * n_heads + a.h0) * head_dim;
      attention_item_generic(out + off, q + off, cache, pos + a.i + 1, a.g * head_dim, a.nh, head_dim, scores);
    }
  });
}

void swiglu_generic(const CpuContext& ctx, float* out, const float* gate, const float* up, int64_t count) {
  const int64_t chunks = ceil_div(count, 1024);
  parallel_for(ctx, chunks, 1024 * 16, [&](int64_t c0, int64_t c1, int) {
    const int64_t e = min_i64(c1 * 1024, count);
    for (int64_t j = c0 * 1024; j < e; j++) {
      const float g = gate[j];
      out[j] = g / (1.0f + exp_approx(-g)) * up[j];
    }
  });
}

void add_generic(const CpuContext& ctx, float* out, const float* a, const float* b, int64_t count) {
  const int64_t chunks = ceil_div(count, 1024);
  parallel_for(ctx, chunks, 1024, [&](int64_t c0, int64_t c1, int) {
    const int64_t e = min_i64(c1 * 1024, count);
    for (int64_t j = c0 * 1024; j < e; j++) out[j] = a[j] + b[j];
  });
}

}  // namespace

const CpuKernels& cpu_kernels_generic() {
  static const CpuKernels table = {
      "generic",       fast_tier_scratch_bytes, embed_generic,  rmsnorm_generic, matmul_generic, rope_generic,
      kv_append_generic, attention_generic,     swiglu_generic, add_generic,
  };
  return table;
}

}  // namespace lc
