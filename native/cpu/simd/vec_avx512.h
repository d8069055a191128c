// The f32 vector of the avx512 tier: 16 lanes in a zmm register, with the loads and
// conversions the shared float kernels (float_ops.h) use. Include only from *_avx512.cc.
// Partial loads and stores (a count n < 16) use AVX-512 masks, so they never touch memory
// past the n-th element.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace lc {
namespace avx512 {
namespace {

struct Vec {
  static constexpr int W = 16;  // f32 lanes
  using F = __m512;

  static __mmask16 mask(int64_t n) {  // lanes < n
    return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1u);
  }

  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }  // a * b + c, one rounding
  // a * b rounded to f32 even where an add follows: g++ contracts mul + add into FMA in C++
  // (-ffp-contract=fast is its C++ default); the empty asm hides the product from that.
  static F mul_rounded(F a, F b) {
    F p = _mm512_mul_ps(a, b);
    __asm__("" : "+v"(p));
    return p;
  }
  static float hsum(F v) { return _mm512_reduce_add_ps(v); }
  static float hmax(F v) { return _mm512_reduce_max_ps(v); }

  // f32
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static F load(const float* p, int64_t n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static void store(float* p, F v, int64_t n) { _mm512_mask_storeu_ps(p, mask(n), v); }

  // f16 (IEEE half) <-> f32: F16C-style conversion, round to nearest even
  static F load_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static F load_f16(const uint16_t* p, int64_t n) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask(n), p)); }
  static void store_f16(uint16_t* p, F v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static void store_f16(uint16_t* p, F v, int64_t n) {
    _mm256_mask_storeu_epi16(p, mask(n), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }

  // bf16 -> f32: the 16 bits are the top half of the f32
  static F bf16_bits(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static F load_bf16(const uint16_t* p) { return bf16_bits(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static F load_bf16(const uint16_t* p, int64_t n) { return bf16_bits(_mm256_maskz_loadu_epi16(mask(n), p)); }

  // 16 int8 -> f32 (exact)
  static F load_i8(const int8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }

  // Interleaved RoPE on 8 pairs: x = [x0 x1 x2 x3 ...], cs = [c0 s0 c1 s1 ...] ->
  // [x0 c0 - x1 s0, x0 s0 + x1 c0, ...], with the reference's roundings (mul, mul, add/sub).
  static F rotate_pairs(F x, F cs) {
    const F c = _mm512_moveldup_ps(cs);                  // c0 c0 c1 c1 ...
    const F s = _mm512_movehdup_ps(cs);                  // s0 s0 s1 s1 ...
    const F swapped = _mm512_permute_ps(x, 0xB1);        // x1 x0 x3 x2 ...
    const F a = mul_rounded(x, c), b = mul_rounded(swapped, s);
    return _mm512_mask_add_ps(_mm512_sub_ps(a, b), __mmask16(0xAAAA), a, b);  // even: a - b, odd: a + b
  }

  // exp(x), relative error ~1e-7: x = n ln2 + r, exp(r) by the Cephes degree-7 polynomial,
  // 2^n in the exponent bits; x is clamped so the result stays a finite normal number.
  static F exp(F x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.336544f));
    x = _mm512_min_ps(x, _mm512_set1_ps(88.376259f));
    const F n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    F r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    F p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
  }

  // Matmul register tile for f32 / f16 / bf16 weights: weight rows x activation rows.
  // Accumulator registers the attention value pass may hold (of 32).
  static constexpr int kAccRegs = 16;

  static constexpr int kTileRows = 4;
  static constexpr int kTileActs = 4;
};

}  // namespace
}  // namespace avx512
}  // namespace lc
