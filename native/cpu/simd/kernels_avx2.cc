// The avx2 tier: AVX2 + FMA + F16C (+ BMI2), compiled with those flags and selected only after
// cpu_kernels_avx2() in kernels_select.cc has checked the CPU. The f32 kernels come from
// float_ops.h over 8-lane ymm vectors; this file adds the integer kernel of the Q8_0 / INT4
// matmul (method: quant_matmul.h), built on vpmaddubsw (u8 x i8 products summed in pairs to
// i16) and vpmaddwd (i16 pairs summed to i32).
#include <immintrin.h>

#include "float_ops.h"
#include "nf4_simd.h"
#include "quant_matmul.h"
#include "simd_tiers.h"
#include "vec_avx2.h"

namespace lc {
namespace {

using V256 = avx2::Vec;

struct Quant256 {
  // Register tile: 4 weight rows x 2 activation rows = 8 ymm accumulators (of 16 registers).
  static constexpr int kTileRows = 4;
  static constexpr int kTileActs = 2;
  // Q8_0 takes the sign trick (|c| times q with c's sign), so no offset term.
  static constexpr bool kQ8Offset = false;

  // count blocks of 32 values x -> int8 codes q, scale d[j] = absmax / 127 (q = round(x / d)),
  // sums[j] = d[j] * sum of the block's codes.
  static void quantize_blocks(uint8_t* q, float* d, float* sums, const float* x, int64_t count) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t j = 0; j < count; j++) {
      __m256 v[4];
      __m256 amax = _mm256_setzero_ps();
      for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 32 * j + 8 * k);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
      }
      const float m = V256::hmax(amax);
      const __m256 inv = _mm256_set1_ps(m > 0.0f ? 127.0f / m : 0.0f);
      __m256i qi[4];
      for (int k = 0; k < 4; k++) qi[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], inv));  // round to nearest even
      // int32 -> int8 with saturation; the packs interleave 128-bit lanes, the permute restores order
      const __m256i q16a = _mm256_packs_epi32(qi[0], qi[1]), q16b = _mm256_packs_epi32(qi[2], qi[3]);
      const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16a, q16b),
                                                     _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * j), q8);
      const __m256i sum = _mm256_add_epi32(_mm256_add_epi32(qi[0], qi[1]), _mm256_add_epi32(qi[2], qi[3]));
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
      d[j] = m / 127.0f;
      sums[j] = d[j] * float(_mm_cvtsi128_si32(s4));
    }
  }

  // The weight scale of block b from the row's f16 parameters (Q8_0: one scale per block;
  // INT4: {scale, min} per group).
  template <QKind K>
  static float weight_scale(const uint16_t* p, int64_t b) {
    return _cvtsh_ss(K == QKind::Q8 ? p[b] : p[2 * (b / blocks_per_group<K>())]);
  }

  // The 32 codes of block b of a weight row, in the order of the activations they multiply:
  // Q8_0 signed bytes; INT4 unsigned 0..15.
  template <QKind K>
  static __m256i codes_block(const uint8_t* c, int64_t b) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    if constexpr (K == QKind::Q8) {
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 32 * b));
    } else if constexpr (K == QKind::Int4G32) {
      // one 16-byte group: low nibbles = weights 0..15, high nibbles = 16..31
      const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 16 * b));
      return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), low4);
    } else if constexpr (K == QKind::Int4G64) {
      // 32-byte group of blocks 2k, 2k+1: low nibbles = block 2k, high nibbles = block 2k+1
      const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 32 * (b >> 1)));
      return _mm256_and_si256(_mm256_srl_epi16(y, _mm_cvtsi64_si128((b & 1) * 4)), low4);
    } else {
      // 64-byte group of blocks 4k .. 4k+3: low nibbles of bytes 0..31 / 32..63 = blocks 4k, 4k+1,
      // high nibbles = blocks 4k+2, 4k+3
      const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 64 * (b >> 2) + 32 * (b & 1)));
      return _mm256_and_si256(_mm256_srl_epi16(y, _mm_cvtsi64_si128(((b >> 1) & 1) * 4)), low4);
    }
  }

  // 8 int32 partial sums of the block's 32 products codes . q
  template <QKind K>
  static __m256i block_dot(__m256i wc, __m256i xv) {
    const __m256i ones = _mm256_set1_epi16(1);
    if constexpr (K == QKind::Q8) {
      // |c| (unsigned) times q with c's sign: the same products, |c| q <= 128 * 127 fits i16 pairs
      return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(wc), _mm256_sign_epi8(xv, wc)), ones);
    } else {
      return _mm256_madd_epi16(_mm256_maddubs_epi16(wc, xv), ones);  // 15 * 127 * 2 fits i16
    }
  }

  // out[r][m] = sum_b ws_m[b] d_r[b] (codes_m[b] . q_r[b]), one block per step.
  template <QKind K, int MR, int NR>
  static void tile(const QTile& a) {
    const int64_t nb = a.cols / 32;
    const uint8_t* xr[NR];
    const float* xd[NR];
    for (int r = 0; r < NR; r++) {
      xr[r] = a.xq + size_t(r) * a.xq_stride;
      xd[r] = qrow_scales(xr[r], a.cols);
    }
    __m256 acc[MR][NR];
    for (int m = 0; m < MR; m++)
      for (int r = 0; r < NR; r++) acc[m][r] = _mm256_setzero_ps();
    constexpr int64_t kBlockBytes = K == QKind::Q8 ? 32 : 16;  // code bytes per block
    for (int64_t b = 0; b < nb; b++) {
      if (((b * kBlockBytes) & 63) == 0) prefetch_rows<MR>(a.codes, b * kBlockBytes);
      if ((b & 15) == 0) prefetch_rows<MR>(a.params, K == QKind::Q8 ? b : 2 * (b / blocks_per_group<K>()));
      __m256i wc[MR];
      float ws[MR];
      for (int m = 0; m < MR; m++) {
        wc[m] = codes_block<K>(a.codes[m], b);
        ws[m] = weight_scale<K>(a.params[m], b);
      }
      for (int r = 0; r < NR; r++) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr[r] + 32 * b));
        for (int m = 0; m < MR; m++) {
          const __m256 scale = _mm256_set1_ps(ws[m] * xd[r][b]);
          acc[m][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_dot<K>(wc[m], xv)), scale, acc[m][r]);
        }
      }
    }
    for (int r = 0; r < NR; r++)
      for (int m = 0; m < MR; m++) a.out[r * a.out_stride + m] = V256::hsum(acc[m][r]);
  }
};

void matmul_avx2(const CpuContext& ctx, float* out, const float* x, const Weight& w, int64_t n) {
  switch (w.dtype) {
    case DType::F32: matmul_float_simd<V256, DType::F32>(ctx, out, x, w, n); return;
    case DType::F16: matmul_float_simd<V256, DType::F16>(ctx, out, x, w, n); return;
    case DType::BF16: matmul_float_simd<V256, DType::BF16>(ctx, out, x, w, n); return;
    case DType::Q8_0:
    case DType::INT4: matmul_quant_simd<V256, Quant256>(ctx, out, x, w, n); return;
    case DType::NF4: matmul_nf4_avx2(ctx, out, x, w, n); return;  // simd/nf4_avx2.cc
  }
}

}  // namespace

const CpuKernels& avx2_kernel_table() {
  static const CpuKernels table = {
      "avx2",
      fast_tier_scratch_bytes,
      embed_simd<V256>,
      rmsnorm_simd<V256>,
      matmul_avx2,
      rope_simd<V256>,
      kv_append_simd<V256>,
      attention_simd<V256>,
      swiglu_simd<V256>,
      add_simd<V256>,
  };
  return table;
}

}  // namespace lc
