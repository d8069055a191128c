// Prompt-processing GEMM for Q8_0 and INT4 weights on AVX-512 VNNI (avx512 tier only; included
// by kernels_avx512.cc). Used when a matmul has several activation rows (n >= kGemmMinRows);
// a single row (decode) keeps the dot-product kernel of quant_matmul.h.
//
// Method. The activation rows are quantized to qrows exactly as in quant_matmul.h (int8 blocks
// of 32, scale d, term vector t). Each thread takes a contiguous range of panels of 16 weight
// rows (static split, output columns never shared between threads) and, per panel, first
// repacks the panel into its own scratch so that 32-bit lane l of every vector belongs to
// weight row l:
//   codes  [block b][j = 0..7][lane l]  4 unsigned codes of row l at columns 32b + 4j .. +3
//                                       (INT4: 0..15; Q8_0: c + 128)
//   ws     [block b][l]                 f32 scale of row l for block b
//   wm     [group g][l]                 f32 min of row l for group g (INT4)
// Then for NR activation rows at a time, one vpdpbusd per (j, row) multiplies the panel
// vector by the activation's 4 codes broadcast to every lane, so each int32 lane is already
// one output's partial sum: no horizontal reductions, and per 32-block only
//   Q8_0:  acc += ws * (d isum + t)      t = -128 d sum(q) takes back the +128 offset
//   INT4:  acc += ws * (d isum)  and, once per group, acc += wm * t_g
// The panel (16 x cols bytes) is unpacked once and reused by all n activation rows.
#pragma once

#include <immintrin.h>

#include <cstring>

#include "quant_matmul.h"

namespace lc {
namespace {

constexpr int64_t kGemmMinRows = 8;  // fewer activation rows: the dot-product kernel
constexpr int kGemmActs = 8;         // activation rows per register tile (8 int32 + 8 f32 accumulators)

// permutex2var indices of the 16 x 8 -> 8 x 16 dword transpose: 3 stages, each pairing
// registers r and r | 1 << s and sorting their elements by bit s of the column j; the last
// stage puts row l at lane l. Built once by simulating where each element goes.
struct TransposeIdx {
  alignas(64) int32_t idx[3][8][16];
  TransposeIdx() {
    int id[8][16];  // element at (register, lane): row * 8 + column
    for (int r = 0; r < 8; r++)
      for (int x = 0; x < 16; x++) id[r][x] = 16 * r + x;
    for (int s = 0; s < 3; s++) {
      int next[8][16];
      for (int r0 = 0; r0 < 8; r0++) {
        if (r0 & (1 << s)) continue;
        const int r1 = r0 | (1 << s);
        for (int bit = 0; bit < 2; bit++) {
          const int dst = bit ? r1 : r0;
          int lane = 0;
          for (int src = 0; src < 2; src++)
            for (int x = 0; x < 16; x++) {
              const int e = id[src ? r1 : r0][x];
              if (((e & 7) >> s & 1) != bit) continue;
              const int at = s == 2 ? e >> 3 : lane;
              idx[s][dst][at] = src * 16 + x;
              next[dst][at] = e;
              lane++;
            }
        }
      }
      std::memcpy(id, next, sizeof id);
    }
  }
};

inline const TransposeIdx& transpose_idx() {
  static const TransposeIdx t;
  return t;
}

// The 32 codes of block b of a weight row as unsigned bytes, in activation order
// (INT4 nibble layouts: quant_matmul.h / Quant512::codes_pair).
template <QKind K>
__m256i block_codes32(const uint8_t* c, int64_t b) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  if constexpr (K == QKind::Q8) {
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 32 * b));
    return _mm256_xor_si256(y, _mm256_set1_epi8(char(0x80)));  // c + 128
  } else if constexpr (K == QKind::Int4G32) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 16 * b));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), low4);
  } else if constexpr (K == QKind::Int4G64) {  // group of 32 bytes: low nibbles block 2g, high 2g + 1
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 32 * (b >> 1)));
    return _mm256_and_si256((b & 1) ? _mm256_srli_epi16(y, 4) : y, low4);
  } else {  // group of 64 bytes: low nibbles blocks 0, 1 (bytes 0..31, 32..63), high nibbles 2, 3
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 64 * (b >> 2) + 32 * (b & 1)));
    return _mm256_and_si256((b & 2) ? _mm256_srli_epi16(y, 4) : y, low4);
  }
}

struct GemmPanel {
  uint8_t* codes;  // [nb][8][64]
  float* ws;       // [nb][16]
  float* wm;       // [groups][16] (INT4)
};

inline GemmPanel gemm_panel_at(uint8_t* base, int64_t cols) {
  const int64_t nb = cols / 32;
  GemmPanel p;
  p.codes = base;
  p.ws = reinterpret_cast<float*>(base + align64(size_t(16 * cols)));
  p.wm = p.ws + 16 * nb;
  return p;
}

// Weight rows r0 .. r0 + mr - 1 (mr <= 16) into the panel; lanes past mr get zeros.
template <QKind K>
void pack_panel(const GemmPanel& p, const Weight& w, int64_t r0, int64_t mr) {
  const int64_t cols = w.cols, nb = cols / 32, per = blocks_per_group<K>();
  const TransposeIdx& t = transpose_idx();
  const uint8_t* rowc[16];
  for (int64_t l = 0; l < 16; l++) {
    const int64_t r = r0 + (l < mr ? l : 0);
    rowc[l] = K == QKind::Q8 ? reinterpret_cast<const uint8_t*>(q8_codes_of(w, r)) : int4_codes_of(w, r);
  }
  alignas(64) uint8_t tmp[16 * 32];
  for (int64_t b = 0; b < nb; b++) {
    for (int64_t l = 0; l < 16; l++) {
      const __m256i c = l < mr ? block_codes32<K>(rowc[l], b) : _mm256_setzero_si256();
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 32 * l), c);
    }
    __m512i z[8];
    for (int r = 0; r < 8; r++) z[r] = _mm512_load_si512(tmp + 64 * r);
    for (int s = 0; s < 3; s++) {
      __m512i nz[8];
      for (int r0 = 0; r0 < 8; r0++) {
        if (r0 & (1 << s)) continue;
        const int r1 = r0 | (1 << s);
        nz[r0] = _mm512_permutex2var_epi32(z[r0], _mm512_load_si512(t.idx[s][r0]), z[r1]);
        nz[r1] = _mm512_permutex2var_epi32(z[r0], _mm512_load_si512(t.idx[s][r1]), z[r1]);
      }
      for (int r = 0; r < 8; r++) z[r] = nz[r];
    }
    for (int j = 0; j < 8; j++) _mm512_store_si512(p.codes + 512 * b + 64 * j, z[j]);
  }
  for (int64_t l = 0; l < 16; l++) {
    const bool live = l < mr;
    if (K == QKind::Q8) {
      const uint16_t* s = q8_scales_of(w, r0 + (live ? l : 0));
      for (int64_t b = 0; b < nb; b++) p.ws[16 * b + l] = live ? _cvtsh_ss(s[b]) : 0.0f;
    } else {
      const uint16_t* s = int4_params_of(w, r0 + (live ? l : 0));  // {scale, min} per group
      for (int64_t b = 0; b < nb; b++) p.ws[16 * b + l] = live ? _cvtsh_ss(s[2 * (b / per)]) : 0.0f;
      for (int64_t g = 0; g < nb / per; g++) p.wm[16 * g + l] = live ? _cvtsh_ss(s[2 * g + 1]) : 0.0f;
    }
  }
}

inline int32_t load_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// out[r * out_stride + l] (l in lanes) = panel row l . activation qrow r, for NR qrows.
template <QKind K, int NR>
void gemm_tile(const GemmPanel& p, const uint8_t* xq, size_t xq_stride, int64_t cols, float* out, int64_t out_stride,
               __mmask16 lanes) {
  constexpr int64_t per = blocks_per_group<K>();
  const int64_t nb = cols / 32;
  const uint8_t* xr[NR];
  const float* xd[NR];
  const float* xt[NR];
  __m512 acc[NR];
  for (int r = 0; r < NR; r++) {
    xr[r] = xq + size_t(r) * xq_stride;
    xd[r] = qrow_scales(xr[r], cols);
    xt[r] = qrow_terms(xr[r], cols);
    acc[r] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* wc = p.codes + 512 * b;
    __m512i is[NR];
    for (int r = 0; r < NR; r++) is[r] = _mm512_setzero_si512();
    for (int j = 0; j < 8; j++) {
      const __m512i wv = _mm512_load_si512(wc + 64 * j);
      for (int r = 0; r < NR; r++)
        is[r] = _mm512_dpbusd_epi32(is[r], wv, _mm512_set1_epi32(load_i32(xr[r] + 32 * b + 4 * j)));
    }
    const __m512 ws = _mm512_load_ps(p.ws + 16 * b);
    for (int r = 0; r < NR; r++) {
      const __m512 f = _mm512_cvtepi32_ps(is[r]);
      if constexpr (K == QKind::Q8) {
        acc[r] = _mm512_fmadd_ps(ws, _mm512_fmadd_ps(f, _mm512_set1_ps(xd[r][b]), _mm512_set1_ps(xt[r][b])), acc[r]);
      } else {
        acc[r] = _mm512_fmadd_ps(ws, _mm512_mul_ps(f, _mm512_set1_ps(xd[r][b])), acc[r]);
      }
    }
    if constexpr (K != QKind::Q8) {
      if (b % per == per - 1) {
        const int64_t g = b / per;
        const __m512 wm = _mm512_load_ps(p.wm + 16 * g);
        for (int r = 0; r < NR; r++) acc[r] = _mm512_fmadd_ps(wm, _mm512_set1_ps(xt[r][2 * g + 1]), acc[r]);
      }
    }
  }
  for (int r = 0; r < NR; r++) _mm512_mask_storeu_ps(out + r * out_stride, lanes, acc[r]);
}

// gemm_tile<K, nr> for a runtime nr in 1 .. NR.
template <QKind K, int NR>
void gemm_tile_n(int64_t nr, const GemmPanel& p, const uint8_t* xq, size_t xq_stride, int64_t cols, float* out,
                 int64_t out_stride, __mmask16 lanes) {
  if constexpr (NR > 1) {
    if (nr < NR) {
      gemm_tile_n<K, NR - 1>(nr, p, xq, xq_stride, cols, out, out_stride, lanes);
      return;
    }
  }
  gemm_tile<K, NR>(p, xq, xq_stride, cols, out, out_stride, lanes);
}

template <class QK, QKind K>
void gemm_quant_kind(const CpuContext& ctx, float* out, const float* x, const Weight& w, int64_t n, uint8_t* qact,
                     uint8_t* panels, size_t panel_bytes) {
  const int64_t rows = w.rows, cols = w.cols;
  const size_t qrow = qrow_bytes(cols);
  parallel_for(ctx, n, 4 * cols, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) quantize_activation_row<QK, K>(qact + size_t(i) * qrow, x + i * cols, cols);
  });
  const int64_t count = ceil_div(rows, 16);
  parallel_for(ctx, count, 16 * cols * n, [&](int64_t p0, int64_t p1, int ith) {
    const GemmPanel p = gemm_panel_at(panels + size_t(ith) * panel_bytes, cols);
    for (int64_t pi = p0; pi < p1; pi++) {
      const int64_t r0 = 16 * pi, mr = min_i64(16, rows - r0);
      pack_panel<K>(p, w, r0, mr);
      const __mmask16 lanes = __mmask16((1u << mr) - 1);
      for (int64_t i = 0; i < n; i += kGemmActs) {
        gemm_tile_n<K, kGemmActs>(min_i64(kGemmActs, n - i), p, qact + size_t(i) * qrow, qrow, cols,
                                  out + i * rows + r0, rows, lanes);
      }
    }
  });
}

// The GEMM for n >= kGemmMinRows Q8_0 / INT4 (G = 32, 64, 128) rows; false when it does not
// apply (the caller then uses matmul_quant_simd).
template <class QK>
bool matmul_quant_gemm512(const CpuContext& ctx, float* out, const float* x, const Weight& w, int64_t n) {
  const bool q8 = w.dtype == DType::Q8_0;
  if (n < kGemmMinRows || (!q8 && w.group != 32 && w.group != 64 && w.group != 128)) return false;
  ScratchCarver carver(ctx.scratch);
  const size_t qbytes = size_t(n) * qrow_bytes(w.cols);
  const size_t pbytes = gemm_panel_bytes(w.cols);
  const size_t all = align64(qbytes) + size_t(pool_threads(ctx)) * pbytes;
  if (!carver.fits(all)) return false;
  uint8_t* qact = carver.take(qbytes);
  uint8_t* panels = carver.take(size_t(pool_threads(ctx)) * pbytes);
  if (q8) {
    gemm_quant_kind<QK, QKind::Q8>(ctx, out, x, w, n, qact, panels, pbytes);
  } else if (w.group == 32) {
    gemm_quant_kind<QK, QKind::Int4G32>(ctx, out, x, w, n, qact, panels, pbytes);
  } else if (w.group == 64) {
    gemm_quant_kind<QK, QKind::Int4G64>(ctx, out, x, w, n, qact, panels, pbytes);
  } else {
    gemm_quant_kind<QK, QKind::Int4G128>(ctx, out, x, w, n, qact, panels, pbytes);
  }
  return true;
}

}  // namespace
}  // namespace lc
