// NF4 matmul, avx2 tier (compiled with -mavx2 -mfma -mf16c -mbmi2). The 16-entry lookup: two
// vpermps over the table's halves (codes 0..7 and 8..15, indexed by the low 3 bits) and a
// blend on bit 3 of the code (moved to the sign bit, which vblendvps reads).
#include <immintrin.h>

#include "nf4_matmul.h"
#include "nf4_simd.h"

namespace lc {
namespace {

struct Nf4Avx2 {
  static constexpr int W = 8;
  using F = __m256;
  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(F v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static F lookup(__m256i idx) {  // idx in 0..15 per lane
    const __m256 lo = _mm256_loadu_ps(kNf4Values), hi = _mm256_loadu_ps(kNf4Values + 8);
    const __m256 a = _mm256_permutevar8x32_ps(lo, idx), b = _mm256_permutevar8x32_ps(hi, idx);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
  }
  // Block of 32 code bytes: byte j = weight j (low nibble) | weight j + 32 (high nibble).
  static void decode(F (&v)[8], const uint8_t* q) {
    const __m256i m = _mm256_set1_epi32(0x0F);
    for (int k = 0; k < 4; k++) {
      const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * k)));
      v[k] = lookup(_mm256_and_si256(b, m));
      v[k + 4] = lookup(_mm256_srli_epi32(b, 4));
    }
  }
};

}  // namespace

void matmul_nf4_avx2(const CpuContext& ctx, float* out, const float* x, const Weight& w, int64_t n) {
  matmul_nf4_simd<Nf4Avx2>(ctx, out, x, w, n);
}

}  // namespace lc
