// The avx512 tier: AVX-512 F/BW/VL/DQ + VNNI (compiled with those flags; selected only after
// cpu_kernels_avx512() in kernels_select.cc has checked the CPU). The f32 kernels come from
// float_ops.h over 16-lane zmm vectors; this file adds the integer kernel of the Q8_0 / INT4
// matmul (method: quant_matmul.h), built on vpdpbusd: 64 u8 x i8 products summed in groups of
// 4 into 16 int32 lanes per instruction.

// GCC 12's AVX-512 headers build "undefined" vectors from themselves (_mm256_undefined_pd),
// which -Wuninitialized reports once per inlined use; the values are never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <cstring>

#include "float_ops.h"
#include "nf4_simd.h"
#include "quant_gemm_avx512.h"
#include "quant_matmul.h"
#include "simd_tiers.h"
#include "vec_avx512.h"

namespace lc {
namespace {

using V512 = avx512::Vec;

struct Quant512 {
  // Register tile: 4 weight rows x 4 activation rows = 16 zmm accumulators.
  static constexpr int kTileRows = 4;
  static constexpr int kTileActs = 4;
  // vpdpbusd multiplies unsigned by signed bytes: Q8_0 codes c are fed as c + 128, and the
  // extra 128 ws d sum(q) per block is taken back by the term vector (t = -128 d sum(q)).
  static constexpr bool kQ8Offset = true;

  // count blocks of 32 values x -> int8 codes q, scale d[j] = absmax / 127 (q = round(x / d)),
  // sums[j] = d[j] * sum of the block's codes.
  static void quantize_blocks(uint8_t* q, float* d, float* sums, const float* x, int64_t count) {
    for (int64_t j = 0; j < count; j++) {
      const __m512 x0 = _mm512_loadu_ps(x + 32 * j), x1 = _mm512_loadu_ps(x + 32 * j + 16);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
      const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
      const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, inv));  // round to nearest even
      const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, inv));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * j), _mm512_cvtsepi32_epi8(q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * j + 16), _mm512_cvtsepi32_epi8(q1));
      d[j] = amax / 127.0f;
      sums[j] = d[j] * float(_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1)));
    }
  }

  // The weight scales of blocks b0 .. b0 + count - 1 (count <= 16) of a row, one per lane
  // (zeros past count), from its f16 parameters: Q8_0 one scale per block, INT4 {scale, min}
  // per group of 1, 2 or 4 blocks.
  template <QKind K>
  static __m512 weight_scales16(const uint16_t* p, int64_t b0, int64_t count) {
    if constexpr (K == QKind::Q8) {
      return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(V512::mask(count), p + b0));
    } else if constexpr (K == QKind::Int4G32) {
      const __m512 lo = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(V512::mask(2 * count), p + 2 * b0));  // s0 m0 .. s7 m7
      const __m512 hi = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(V512::mask(2 * count - 16), p + 2 * b0 + 16));
      return _mm512_permutex2var_ps(lo, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), hi);
    } else if constexpr (K == QKind::Int4G64) {
      const __m512 f = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(V512::mask(count), p + b0));  // s0 m0 s1 m1 ..
      return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 2, 2, 4, 4, 6, 6, 8, 8, 10, 10, 12, 12, 14, 14), f);
    } else {
      const __m512 f = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(V512::mask(count / 2), p + b0 / 2));
      return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6), f);
    }
  }

  // The 64 codes of blocks 2 bp and 2 bp + 1 of a weight row as unsigned bytes, in the order
  // of the activations they multiply.
  template <QKind K>
  static __m512i codes_pair(const uint8_t* c, int64_t bp) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    if constexpr (K == QKind::Q8) {
      return _mm512_xor_si512(_mm512_loadu_si512(c + 64 * bp), _mm512_set1_epi8(char(0x80)));  // c + 128
    } else if constexpr (K == QKind::Int4G32) {
      // two 16-byte groups; group g: low nibbles = weights 0..15, high nibbles = 16..31
      const __m512i y = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 32 * bp)));
      const __m512i z = _mm512_shuffle_i64x2(y, y, _MM_SHUFFLE(1, 1, 0, 0));  // 128-bit lanes: g0 g0 g1 g1
      return _mm512_and_si512(_mm512_srlv_epi64(z, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0)), low4);
    } else if constexpr (K == QKind::Int4G64) {
      // one 32-byte group: low nibbles = weights 0..31, high nibbles = 32..63
      const __m512i z = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 32 * bp)));
      return _mm512_and_si512(_mm512_mask_srli_epi64(z, 0xF0, z, 4), low4);  // upper half: high nibbles
    } else {
      // one 64-byte group spans two pairs: low nibbles = weights 0..63 (even bp), high = 64..127
      const __m512i z = _mm512_loadu_si512(c + 64 * (bp >> 1));
      return _mm512_and_si512(_mm512_srl_epi64(z, _mm_cvtsi64_si128((bp & 1) * 4)), low4);
    }
  }

  // The 32 codes of block b alone, in the low half (an odd number of blocks: Q8_0, G = 32).
  template <QKind K>
  static __m512i codes_single(const uint8_t* c, int64_t b) {
    if constexpr (K == QKind::Q8) {
      const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 32 * b));
      return _mm512_zextsi256_si512(_mm256_xor_si256(y, _mm256_set1_epi8(char(0x80))));
    } else {
      const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 16 * b));
      const __m256i y = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), _mm256_set1_epi8(0x0F));
      return _mm512_zextsi256_si512(y);
    }
  }

  // out[r][m] = sum_b ws_m[b] d_r[b] (codes_m[b] . q_r[b]). Blocks go 16 at a time: the 16
  // products ws d of each (m, r) are formed once in one vector; then two blocks per step, one
  // vpdpbusd per (m, r) gives 8 int32 partial sums for each block, which are converted and
  // scaled by their two products (a lane permute of that vector).
  template <QKind K, int MR, int NR>
  static void tile(const QTile& a) {
    constexpr int64_t kPairBytes = K == QKind::Q8 ? 64 : 32;  // code bytes per pair of blocks
    const int64_t nb = a.cols / 32;
    const uint8_t* xr[NR];
    const float* xd[NR];
    for (int r = 0; r < NR; r++) {
      xr[r] = a.xq + size_t(r) * a.xq_stride;
      xd[r] = qrow_scales(xr[r], a.cols);
    }
    __m512 acc[MR][NR];
    for (int m = 0; m < MR; m++)
      for (int r = 0; r < NR; r++) acc[m][r] = _mm512_setzero_ps();
    const __m512i pair0 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    for (int64_t b0 = 0; b0 < nb; b0 += 16) {
      const int64_t count = min_i64(16, nb - b0);
      prefetch_rows<MR>(a.params, K == QKind::Q8 ? b0 : 2 * (b0 / blocks_per_group<K>()));
      __m512 scale[MR][NR];  // lane j: ws_m[b0 + j] * d_r[b0 + j]
      {
        __m512 dx[NR];
        for (int r = 0; r < NR; r++) dx[r] = _mm512_maskz_loadu_ps(V512::mask(count), xd[r] + b0);
        for (int m = 0; m < MR; m++) {
          const __m512 ws = weight_scales16<K>(a.params[m], b0, count);
          for (int r = 0; r < NR; r++) scale[m][r] = _mm512_mul_ps(ws, dx[r]);
        }
      }
      for (int64_t k = 0; 2 * k + 2 <= count; k++) {
        const int64_t bp = b0 / 2 + k;
        if (((bp * kPairBytes) & 63) == 0) prefetch_rows<MR>(a.codes, bp * kPairBytes);
        const __m512i idx = _mm512_add_epi32(pair0, _mm512_set1_epi32(int(2 * k)));  // lanes of blocks 2k, 2k+1
        __m512i wc[MR];
        for (int m = 0; m < MR; m++) wc[m] = codes_pair<K>(a.codes[m], bp);
        for (int r = 0; r < NR; r++) {
          const __m512i xv = _mm512_loadu_si512(xr[r] + 64 * bp);
          for (int m = 0; m < MR; m++) {
            const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wc[m], xv);
            acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(idx, scale[m][r]), acc[m][r]);
          }
        }
      }
      if constexpr (K == QKind::Q8 || K == QKind::Int4G32) {
        if (count & 1) {  // odd block count: the last block alone, upper lanes zero
          const int64_t b = b0 + count - 1;
          const __m512i idx = _mm512_add_epi32(pair0, _mm512_set1_epi32(int(count - 1)));
          for (int m = 0; m < MR; m++) {
            const __m512i wc = codes_single<K>(a.codes[m], b);
            for (int r = 0; r < NR; r++) {
              const __m512i xv = _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr[r] + 32 * b)));
              const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wc, xv);
              acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(idx, scale[m][r]), acc[m][r]);
            }
          }
        }
      }
    }
    for (int r = 0; r < NR; r++)
      for (int m = 0; m < MR; m++) a.out[r * a.out_stride + m] = _mm512_reduce_add_ps(acc[m][r]);
  }
};

void matmul_avx512(const CpuContext& ctx, float* out, const float* x, const Weight& w, int64_t n) {
  switch (w.dtype) {
    case DType::F32: matmul_float_simd<V512, DType::F32>(ctx, out, x, w, n); return;
    case DType::F16: matmul_float_simd<V512, DType::F16>(ctx, out, x, w, n); return;
    case DType::BF16: matmul_float_simd<V512, DType::BF16>(ctx, out, x, w, n); return;
    case DType::Q8_0:
    case DType::INT4:
      if (!matmul_quant_gemm512<Quant512>(ctx, out, x, w, n)) matmul_quant_simd<V512, Quant512>(ctx, out, x, w, n);
      return;
    case DType::NF4: matmul_nf4_avx512(ctx, out, x, w, n); return;  // simd/nf4_avx512.cc
  }
}

}  // namespace

const CpuKernels& avx512_kernel_table() {
  static const CpuKernels table = {
      "avx512",
      fast_tier_scratch_bytes,
      embed_simd<V512>,
      rmsnorm_simd<V512>,
      matmul_avx512,
      rope_simd<V512>,
      kv_append_simd<V512>,
      attention_simd<V512>,
      swiglu_simd<V512>,
      add_simd<V512>,
  };
  return table;
}

}  // namespace lc
