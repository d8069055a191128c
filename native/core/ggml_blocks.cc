// ggml block decoders and encoders; layouts and value formulas in ggml_blocks.h.
//
// Bit-exactness with ggml needs every product rounded to float32 before the next operation:
// a compiler that fuses `a*b - c` into one FMA (g++ does by default where FMA is baseline, e.g.
// aarch64) changes the last bit, so contraction is off for this file.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "ggml_blocks.h"
#include "nf4.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "half.h"

namespace lc {

namespace {

inline float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// roundf for |v| < 2^31: to nearest, ties away from zero (v - trunc(v) is exact in float).
inline int round_away(float v) {
  int i = int(v);
  const float frac = v - float(i);
  if (frac >= 0.5f) i++;
  else if (frac <= -0.5f) i--;
  return i;
}

inline void store_f16(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

void dequantize_q4_0(float* y, const uint8_t* x, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, x += 18, y += 32) {
    const float d = load_f16(x);
    const uint8_t* qs = x + 2;
    for (int j = 0; j < 16; j++) {
      y[j] = float((qs[j] & 0x0F) - 8) * d;
      y[j + 16] = float((qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q4_1(float* y, const uint8_t* x, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, x += 20, y += 32) {
    const float d = load_f16(x), m = load_f16(x + 2);
    const uint8_t* qs = x + 4;
    for (int j = 0; j < 16; j++) {
      y[j] = float(qs[j] & 0x0F) * d + m;
      y[j + 16] = float(qs[j] >> 4) * d + m;
    }
  }
}

// The fifth bits of a Q5 block: bit j of qh belongs to weight j (j = 0..31).
inline int q5_code(const uint8_t* qs, uint32_t qh, int j) {
  const int nib = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
  return nib | int((qh >> j) & 1u) << 4;
}

void dequantize_q5_0(float* y, const uint8_t* x, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, x += 22, y += 32) {
    const float d = load_f16(x);
    uint32_t qh;
    std::memcpy(&qh, x + 2, 4);
    for (int j = 0; j < 32; j++) y[j] = float(q5_code(x + 6, qh, j) - 16) * d;
  }
}

void dequantize_q5_1(float* y, const uint8_t* x, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, x += 24, y += 32) {
    const float d = load_f16(x), m = load_f16(x + 2);
    uint32_t qh;
    std::memcpy(&qh, x + 4, 4);
    for (int j = 0; j < 32; j++) y[j] = float(q5_code(x + 8, qh, j)) * d + m;
  }
}

void dequantize_q8_0(float* y, const uint8_t* x, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, x += 34, y += 32) {
    const float d = load_f16(x);
    for (int j = 0; j < 32; j++) y[j] = float(int8_t(x[2 + j])) * d;
  }
}

// Q4_K: the 128 code bytes form 4 groups of 32; in group g, byte l holds weight 64g + l (low
// nibble, sub-block 2g) and weight 64g + 32 + l (high nibble, sub-block 2g + 1).
void dequantize_q4_k(float* y, const uint8_t* x, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, x += 144) {
    const float d = load_f16(x), dmin = load_f16(x + 2);
    const uint8_t* scales = x + 4;
    const uint8_t* q = x + 16;
    for (int g = 0; g < 4; g++, q += 32) {
      uint8_t sc, m;
      k_scale_min(scales, 2 * g, &sc, &m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      k_scale_min(scales, 2 * g + 1, &sc, &m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; l++) *y++ = d1 * float(q[l] & 0x0F) - m1;
      for (int l = 0; l < 32; l++) *y++ = d2 * float(q[l] >> 4) - m2;
    }
  }
}

// Q5_K: as Q4_K, plus qh[32]: for group g, bit 2g of qh[l] is the fifth bit of weight 64g + l
// and bit 2g + 1 that of weight 64g + 32 + l.
void dequantize_q5_k(float* y, const uint8_t* x, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, x += 176) {
    const float d = load_f16(x), dmin = load_f16(x + 2);
    const uint8_t* scales = x + 4;
    const uint8_t* qh = x + 16;
    const uint8_t* q = x + 48;
    for (int g = 0; g < 4; g++, q += 32) {
      uint8_t sc, m;
      k_scale_min(scales, 2 * g, &sc, &m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      k_scale_min(scales, 2 * g + 1, &sc, &m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      const uint8_t u1 = uint8_t(1u << (2 * g)), u2 = uint8_t(2u << (2 * g));
      for (int l = 0; l < 32; l++) *y++ = d1 * float((q[l] & 0x0F) + ((qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; l++) *y++ = d2 * float((q[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

// Q6_K: two halves of 128 weights; half h uses ql[64h..], qh[32h..], scales[8h..]. For l in
// 0..31 (i = l/16): weight l = low(ql[l]) | bits 0-1 of qh[l], scale i; l+32 = low(ql[l+32]) |
// bits 2-3, scale i+2; l+64 = high(ql[l]) | bits 4-5, scale i+4; l+96 = high(ql[l+32]) | bits
// 6-7, scale i+6. Value (d·scale)·(code - 32).
void dequantize_q6_k(float* y, const uint8_t* x, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, x += 210) {
    const float d = load_f16(x + 208);
    for (int h = 0; h < 2; h++, y += 128) {
      const uint8_t* ql = x + 64 * h;
      const uint8_t* qh = x + 128 + 32 * h;
      const int8_t* sc = reinterpret_cast<const int8_t*>(x + 192 + 8 * h);
      for (int l = 0; l < 32; l++) {
        const int is = l / 16;
        const int q1 = int((ql[l] & 0x0F) | ((qh[l] >> 0) & 3) << 4) - 32;
        const int q2 = int((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) - 32;
        const int q3 = int((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
        const int q4 = int((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
        y[l] = d * float(sc[is]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
    }
  }
}

void dequantize_q8_k(float* y, const uint8_t* x, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, x += 292, y += 256) {
    float d;
    std::memcpy(&d, x, 4);
    for (int j = 0; j < 256; j++) y[j] = d * float(int8_t(x[4 + j]));
  }
}

}  // namespace

BlockLayout src_layout(SrcType t) {
  switch (t) {
    case SrcType::F32: return {1, 4};
    case SrcType::F16:
    case SrcType::BF16: return {1, 2};
    case SrcType::Q8_0: return {32, 34};
    case SrcType::Q4_0: return {32, 18};
    case SrcType::Q4_1: return {32, 20};
    case SrcType::Q5_0: return {32, 22};
    case SrcType::Q5_1: return {32, 24};
    case SrcType::Q4_K: return {256, 144};
    case SrcType::Q5_K: return {256, 176};
    case SrcType::Q6_K: return {256, 210};
    case SrcType::Q8_K: return {256, 292};
    case SrcType::NF4: return {64, 36};
  }
  return {1, 1};
}

const char* src_type_name(SrcType t) {
  switch (t) {
    case SrcType::F32: return "f32";
    case SrcType::F16: return "f16";
    case SrcType::BF16: return "bf16";
    case SrcType::Q8_0: return "q8_0";
    case SrcType::Q4_0: return "q4_0";
    case SrcType::Q4_1: return "q4_1";
    case SrcType::Q5_0: return "q5_0";
    case SrcType::Q5_1: return "q5_1";
    case SrcType::Q4_K: return "q4_k";
    case SrcType::Q5_K: return "q5_k";
    case SrcType::Q6_K: return "q6_k";
    case SrcType::Q8_K: return "q8_k";
    case SrcType::NF4: return "nf4";
  }
  return "?";
}

bool src_type_from_name(const std::string& name, SrcType* out) {
  for (SrcType t : kAllSrcTypes) {
    if (name == src_type_name(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

void k_scale_min(const uint8_t* s, int k, uint8_t* sc, uint8_t* m) {
  if (k < 4) {
    *sc = s[k] & 63;
    *m = s[k + 4] & 63;
  } else {
    *sc = uint8_t((s[k + 4] & 0x0F) | ((s[k - 4] >> 6) << 4));
    *m = uint8_t((s[k + 4] >> 4) | ((s[k] >> 6) << 4));
  }
}

void dequantize_blocks(float* y, const uint8_t* x, SrcType t, int64_t nb) {
  switch (t) {
    case SrcType::F32: std::memcpy(y, x, size_t(nb) * 4); break;
    case SrcType::F16:
      for (int64_t i = 0; i < nb; i++) y[i] = load_f16(x + 2 * i);
      break;
    case SrcType::BF16:
      for (int64_t i = 0; i < nb; i++) {
        uint16_t h;
        std::memcpy(&h, x + 2 * i, 2);
        y[i] = bf16_to_f32(h);
      }
      break;
    case SrcType::Q8_0: dequantize_q8_0(y, x, nb); break;
    case SrcType::Q4_0: dequantize_q4_0(y, x, nb); break;
    case SrcType::Q4_1: dequantize_q4_1(y, x, nb); break;
    case SrcType::Q5_0: dequantize_q5_0(y, x, nb); break;
    case SrcType::Q5_1: dequantize_q5_1(y, x, nb); break;
    case SrcType::Q4_K: dequantize_q4_k(y, x, nb); break;
    case SrcType::Q5_K: dequantize_q5_k(y, x, nb); break;
    case SrcType::Q6_K: dequantize_q6_k(y, x, nb); break;
    case SrcType::Q8_K: dequantize_q8_k(y, x, nb); break;
    case SrcType::NF4: dequantize_nf4_source_blocks(y, x, nb); break;
  }
}

void quantize_q8_0_blocks(uint8_t* y, const float* x, int64_t n) {
  for (int64_t b = 0; b < n / 32; b++, x += 32, y += 34) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(y, d);
    for (int j = 0; j < 32; j++) y[2 + j] = uint8_t(int8_t(round_away(x[j] * id)));
  }
}

void quantize_q4_0_blocks(uint8_t* y, const float* x, int64_t n) {
  for (int64_t b = 0; b < n / 32; b++, x += 32, y += 18) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(y, d);
    for (int j = 0; j < 16; j++) {
      const float x0 = x[j] * id, x1 = x[j + 16] * id;
      const int q0 = std::min(15, int(int8_t(x0 + 8.5f)));  // truncation toward zero, as ggml's (int8_t) cast
      const int q1 = std::min(15, int(int8_t(x1 + 8.5f)));
      y[2 + j] = uint8_t(q0 | (q1 << 4));
    }
  }
}

}  // namespace lc
