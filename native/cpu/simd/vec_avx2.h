// The f32 vector of the avx2 tier: 8 lanes in a ymm register (AVX2 + FMA + F16C), with the
// loads and conversions the shared float kernels (float_ops.h) use. Include only from
// *_avx2.cc. Partial loads and stores (a count n < 8) never touch memory past the n-th element:
// f32 through vmaskmov, 16-bit types through a small zero-padded copy.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace lc {
namespace avx2 {
namespace {

struct Vec {
  static constexpr int W = 8;  // f32 lanes
  using F = __m256;

  static __m256i mask(int64_t n) {  // lanes < n all ones
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n < 8 ? n : 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }

  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }  // a * b + c, one rounding
  // a * b rounded to f32 even where an add follows: g++ contracts mul + add into FMA in C++
  // (-ffp-contract=fast is its C++ default); the empty asm hides the product from that.
  static F mul_rounded(F a, F b) {
    F p = _mm256_mul_ps(a, b);
    __asm__("" : "+x"(p));
    return p;
  }
  static float hsum(F v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(F v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  // f32
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static F load(const float* p, int64_t n) { return _mm256_maskload_ps(p, mask(n)); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static void store(float* p, F v, int64_t n) { _mm256_maskstore_ps(p, mask(n), v); }

  // 8 16-bit values, or the first n of them with zeros after
  static __m128i load_u16(const uint16_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
  static __m128i load_u16(const uint16_t* p, int64_t n) {
    uint16_t tmp[8] = {};
    std::memcpy(tmp, p, size_t(n < 8 ? n : 8) * 2);
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(tmp));
  }

  // f16 (IEEE half) <-> f32: F16C, round to nearest even
  static F load_f16(const uint16_t* p) { return _mm256_cvtph_ps(load_u16(p)); }
  static F load_f16(const uint16_t* p, int64_t n) { return _mm256_cvtph_ps(load_u16(p, n)); }
  static void store_f16(uint16_t* p, F v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static void store_f16(uint16_t* p, F v, int64_t n) {
    uint16_t tmp[8];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(tmp), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    std::memcpy(p, tmp, size_t(n < 8 ? n : 8) * 2);
  }

  // bf16 -> f32: the 16 bits are the top half of the f32
  static F bf16_bits(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }
  static F load_bf16(const uint16_t* p) { return bf16_bits(load_u16(p)); }
  static F load_bf16(const uint16_t* p, int64_t n) { return bf16_bits(load_u16(p, n)); }

  // 8 int8 -> f32 (exact)
  static F load_i8(const int8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }

  // Interleaved RoPE on 4 pairs: x = [x0 x1 ...], cs = [c0 s0 ...] -> [x0 c0 - x1 s0, x0 s0 + x1 c0, ...],
  // with the reference's roundings (mul, mul, add/sub).
  static F rotate_pairs(F x, F cs) {
    const F c = _mm256_moveldup_ps(cs);            // c0 c0 c1 c1 ...
    const F s = _mm256_movehdup_ps(cs);            // s0 s0 s1 s1 ...
    const F swapped = _mm256_permute_ps(x, 0xB1);  // x1 x0 x3 x2 ...
    return _mm256_addsub_ps(mul_rounded(x, c), mul_rounded(swapped, s));  // even: a - b, odd: a + b
  }

  // exp(x), relative error ~1e-7 (same method as the avx512 tier, vec_avx512.h).
  static F exp(F x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.336544f));
    x = _mm256_min_ps(x, _mm256_set1_ps(88.376259f));
    const F n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    F r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    F p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  }

  // Matmul register tile for f32 / f16 / bf16 weights (16 ymm registers: 8 accumulators).
  // Accumulator registers the attention value pass may hold (of 16).
  static constexpr int kAccRegs = 8;

  static constexpr int kTileRows = 4;
  static constexpr int kTileActs = 2;
};

}  // namespace
}  // namespace avx2
}  // namespace lc
