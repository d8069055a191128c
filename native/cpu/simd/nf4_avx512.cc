// NF4 matmul, avx512 tier (compiled with the tier's AVX-512 flags). The 16-entry lookup is one
// vpermps: the whole table fits a zmm register and the code is the lane index.
#include <immintrin.h>

#include "nf4_matmul.h"
#include "nf4_simd.h"

namespace lc {
namespace {

struct Nf4Avx512 {
  static constexpr int W = 16;
  using F = __m512;
  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static float hsum(F v) { return _mm512_reduce_add_ps(v); }
  // Block of 32 code bytes: byte j = weight j (low nibble) | weight j + 32 (high nibble).
  static void decode(F (&v)[4], const uint8_t* q) {
    const __m512 table = _mm512_loadu_ps(kNf4Values);
    const __m512i m = _mm512_set1_epi32(0x0F);
    for (int k = 0; k < 2; k++) {
      const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * k)));
      v[k] = _mm512_permutexvar_ps(_mm512_and_si512(b, m), table);
      v[k + 2] = _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), table);
    }
  }
};

}  // namespace

void matmul_nf4_avx512(const CpuContext& ctx, float* out, const float* x, const Weight& w, int64_t n) {
  matmul_nf4_simd<Nf4Avx512>(ctx, out, x, w, n);
}

}  // namespace lc
