// matmul with Q8_0 and INT4 weights in the SIMD tiers: the driver shared by avx2 and avx512,
// over the tier's f32 vector V (vec_*.h) and its integer kernel QK (in kernels_<tier>.cc).
//
// Method. Every activation row is quantized once per call to int8 blocks of 32 (a "qrow",
// parallel.h: codes q, scale d = absmax / 127 per block). A weight row is, per 32-block b,
//   Q8_0:  w = c * ws[b]                 (c int8, ws the block's f16 scale)
//   INT4:  w = c * ws[g] + wm[g]         (c in 0..15; ws, wm the f16 scale and min of b's group g)
// so the dot product of weight row m and activation row r is
//   sum_b ws * d[b] * (sum_j c_j q_j)  +  sum_g wm[g] * (sum over g's blocks of d[b] sum_j q_j)
// The first sum is QK's integer kernel: int8 x int8 / u8 x i8 products summed in int32 per
// block, scaled in f32 by ws (read from the f16 parameters in the loop) times d. The second
// sum, for INT4 (and for Q8_0 where QK feeds codes as unsigned c + 128, which adds
// 128 ws d sum(q) per block to take back), is one short f32 dot product per (row, row) pair:
// the weight row's f16 parameter array against the qrow's term vector t, which the
// quantization lays out in the parameters' own order (zeros under the scales), so the weight
// side needs no unpacking.
//
// The result differs from the exact product by the activation rounding (|x - d q| <= d/2 per
// value): about 1e-2 of the output's size for random data; see native/tests/cpu_ops_check.cc.
#pragma once

#include <cstdint>

#include "../parallel.h"

namespace lc {
namespace {

enum class QKind { Q8, Int4G32, Int4G64, Int4G128 };

// 32-blocks per parameter entry: Q8_0 one scale per block; INT4 one {scale, min} per group.
template <QKind K>
constexpr int64_t blocks_per_group() {
  return K == QKind::Int4G128 ? 4 : K == QKind::Int4G64 ? 2 : 1;
}

// The parts of a qrow (layout: parallel.h).
inline const float* qrow_scales(const uint8_t* row, int64_t cols) { return reinterpret_cast<const float*>(row + cols); }
inline float* qrow_scales(uint8_t* row, int64_t cols) { return reinterpret_cast<float*>(row + cols); }
inline const float* qrow_terms(const uint8_t* row, int64_t cols) { return qrow_scales(row, cols) + cols / 32; }

// What QK's tile kernel gets: MR weight rows and NR activation rows (qrows xq_stride apart).
// It writes out[r * out_stride + m] = sum_b ws_m[b] * d_r[b] * (integer dot of block b).
struct QTile {
  const uint8_t* codes[kMaxTileRows];    // weight row m: Q8_0 int8 codes / INT4 packed nibbles
  const uint16_t* params[kMaxTileRows];  // weight row m: Q8_0 f16 scales / INT4 f16 {scale, min}
  const uint8_t* xq;                     // first activation qrow
  size_t xq_stride;
  int64_t cols;  // multiple of 32
  float* out;
  int64_t out_stride;
};

// x[cols] -> qrow for weights of kind K: codes and scales by QK, then the term vector t
//   Q8_0 (QK::kQ8Offset): t[b] = -128 d[b] sum(q of b), dotted with the f16 scales
//   INT4: t[2g] = 0, t[2g + 1] = sum over g's blocks of d[b] sum(q of b), dotted with the
//         f16 {scale, min} pairs
template <class QK, QKind K>
void quantize_activation_row(uint8_t* row, const float* x, int64_t cols) {
  constexpr int64_t kChunk = 64;  // blocks per QK call; a multiple of every group's block count
  const int64_t nb = cols / 32, per = blocks_per_group<K>();
  float* d = qrow_scales(row, cols);
  float* t = d + nb;
  float sums[kChunk];
  for (int64_t b0 = 0; b0 < nb; b0 += kChunk) {
    const int64_t count = min_i64(kChunk, nb - b0);
    QK::quantize_blocks(row + 32 * b0, d + b0, sums, x + 32 * b0, count);  // sums[j] = d sum(q)
    for (int64_t j = 0; j < count; j++) {
      const int64_t b = b0 + j;
      if (K == QKind::Q8) {
        t[b] = -128.0f * sums[j];
      } else if (b % per == 0) {
        t[2 * (b / per)] = 0.0f;
        t[2 * (b / per) + 1] = sums[j];
      } else {
        t[2 * (b / per) + 1] += sums[j];
      }
    }
  }
}

// sum_i f16(a[i]) * b[i], f32.
template <class V>
float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) {
  constexpr int W = V::W;
  typename V::F acc = V::zero();
  int64_t i = 0;
  for (; i + W <= n; i += W) acc = V::fma(V::load_f16(a + i), V::load(b + i), acc);
  if (i < n) acc = V::fma(V::load_f16(a + i, n - i), V::load(b + i, n - i), acc);
  return V::hsum(acc);
}

// QK::tile<K, MR, nr> for a runtime nr in 1 .. NR.
template <class QK, QKind K, int MR, int NR>
void quant_tile_n(int64_t nr, const QTile& a) {
  if constexpr (NR > 1) {
    if (nr < NR) {
      quant_tile_n<QK, K, MR, NR - 1>(nr, a);
      return;
    }
  }
  QK::template tile<K, MR, NR>(a);
}

// One call with kind K known. (1) the activation rows to qrows in qact; (2) threads split the
// weight rows in tiles of MR rows; activation rows go in blocks whose qrows fit in ~512 KiB
// of L2, NR rows per tile call.
template <class V, class QK, QKind K>
void matmul_quant_kind(const CpuContext& ctx, float* out, const float* x, const Weight& w, int64_t n, uint8_t* qact) {
  constexpr int MR = QK::kTileRows, NR = QK::kTileActs;
  static_assert(MR <= kMaxTileRows, "QTile holds kMaxTileRows weight rows");
  constexpr bool kMinTerm = K != QKind::Q8 || QK::kQ8Offset;
  const int64_t rows = w.rows, cols = w.cols, nb = cols / 32;
  const int64_t terms = K == QKind::Q8 ? nb : 2 * (cols / w.group);  // length of t and of a row's parameters
  const size_t qrow = qrow_bytes(cols);

  parallel_for(ctx, n, 4 * cols, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) quantize_activation_row<QK, K>(qact + size_t(i) * qrow, x + i * cols, cols);
  });

  int64_t act_block = n;
  if (n > NR) act_block = max_i64(NR, min_i64(64, int64_t((512 << 10) / qrow)) / NR * NR);
  const int64_t tiles = ceil_div(rows, MR);
  parallel_for(ctx, tiles, MR * cols * n, [&](int64_t t0, int64_t t1, int) {
    for (int64_t i0 = 0; i0 < n; i0 += act_block) {
      const int64_t i1 = min_i64(i0 + act_block, n);
      for (int64_t t = t0; t < t1; t++) {
        const int64_t r0 = t * MR, mr = min_i64(MR, rows - r0);
        QTile a;
        for (int64_t m = 0; m < mr; m++) {
          if (K == QKind::Q8) {
            a.codes[m] = reinterpret_cast<const uint8_t*>(q8_codes_of(w, r0 + m));
            a.params[m] = q8_scales_of(w, r0 + m);
          } else {
            a.codes[m] = int4_codes_of(w, r0 + m);
            a.params[m] = int4_params_of(w, r0 + m);
          }
        }
        a.xq_stride = qrow;
        a.cols = cols;
        a.out_stride = rows;
        for (int64_t i = i0; i < i1; i += NR) {
          const int64_t nr = min_i64(NR, i1 - i);
          a.xq = qact + size_t(i) * qrow;
          a.out = out + i * rows + r0;
          if (mr == MR) {
            quant_tile_n<QK, K, MR, NR>(nr, a);
          } else {
            for (int64_t m = 0; m < mr; m++) {  // the last rows of the matrix, one at a time
              QTile one = a;
              one.codes[0] = a.codes[m];
              one.params[0] = a.params[m];
              one.out = a.out + m;
              quant_tile_n<QK, K, 1, NR>(nr, one);
            }
          }
          if (kMinTerm) {
            for (int64_t r = 0; r < nr; r++) {
              const float* tr = qrow_terms(a.xq + size_t(r) * qrow, cols);
              for (int64_t m = 0; m < mr; m++) a.out[r * rows + m] += dot_f16_f32<V>(a.params[m], tr, terms);
            }
          }
        }
      }
    }
  });
}

// out[n][rows] = x[n][cols] . W^T for Q8_0 / INT4 W (G = 32, 64, 128; other group sizes go
// to the generic tier).
template <class V, class QK>
void matmul_quant_simd(const CpuContext& ctx, float* out, const float* x, const Weight& w, int64_t n) {
  const bool q8 = w.dtype == DType::Q8_0;
  if (!q8 && w.group != 32 && w.group != 64 && w.group != 128) {
    cpu_kernels_generic().matmul(ctx, out, x, w, n);
    return;
  }
  ScratchCarver carver(ctx.scratch);
  const size_t bytes = size_t(n) * qrow_bytes(w.cols);
  if (!carver.fits(bytes)) {  // less than scratch_bytes() promised: stay correct
    cpu_kernels_generic().matmul(ctx, out, x, w, n);
    return;
  }
  uint8_t* qact = carver.take(bytes);
  if (q8) {
    matmul_quant_kind<V, QK, QKind::Q8>(ctx, out, x, w, n, qact);
  } else if (w.group == 32) {
    matmul_quant_kind<V, QK, QKind::Int4G32>(ctx, out, x, w, n, qact);
  } else if (w.group == 64) {
    matmul_quant_kind<V, QK, QKind::Int4G64>(ctx, out, x, w, n, qact);
  } else {
    matmul_quant_kind<V, QK, QKind::Int4G128>(ctx, out, x, w, n, qact);
  }
}

}  // namespace
}  // namespace lc
