// matmul with NF4 weights (core/dtype.h, core/nf4.h) in the SIMD tiers: the driver shared by
// nf4_avx2.cc and nf4_avx512.cc, each of which supplies T:
//   T::W, T::F                the f32 vector (8 or 16 lanes)
//   T::decode(F v[64 / W], q) the 64 table values of one block from its 32 code bytes, in
//                             weight order (v[k] holds weights k W .. k W + W - 1): a 16-entry
//                             lookup (vpermps pair + blend on AVX2, one vpermps on AVX-512)
//   T::zero, set1, load, store, mul, fma, hsum
//
// out[n][rows] = x[n][cols] . W^T; threads split the weight rows.
//   n <= 4  fused: per 64-block, s_i = sum_j table[q_j] x_i[j] for the n rows, then
//           acc_i += scale * s_i (the scale once per block and row)
//   n > 4   the row is decoded once (table x scale) into the thread's scratch, then dotted with
//           the activation rows 4 at a time (decode cost shared by all n rows)
// Accumulation in f32; the reference (matmul_cpu, double) and tests bound the difference.
#pragma once

#include <cstdint>

#include "../../core/nf4.h"
#include "../parallel.h"

namespace lc {
namespace {

template <class T, int NR>
inline void nf4_row_fused(float* out, int64_t out_stride, const uint8_t* codes, const float* scales, const float* x,
                          int64_t cols) {
  using F = typename T::F;
  constexpr int W = T::W, NV = 64 / W;
  F acc[NR];
  for (int i = 0; i < NR; i++) acc[i] = T::zero();
  for (int64_t b = 0; b < cols / 64; b++) {
    F wv[NV];
    T::decode(wv, codes + 32 * b);
    F s[NR];
    for (int i = 0; i < NR; i++) s[i] = T::zero();
    for (int v = 0; v < NV; v++)
      for (int i = 0; i < NR; i++) s[i] = T::fma(wv[v], T::load(x + i * cols + 64 * b + v * W), s[i]);
    const F d = T::set1(scales[b]);
    for (int i = 0; i < NR; i++) acc[i] = T::fma(d, s[i], acc[i]);
  }
  for (int i = 0; i < NR; i++) out[i * out_stride] = T::hsum(acc[i]);
}

template <class T, int NR>
inline void nf4_dot_rows(float* out, int64_t out_stride, const float* wrow, const float* x, int64_t cols) {
  using F = typename T::F;
  constexpr int W = T::W;
  F acc[NR];
  for (int i = 0; i < NR; i++) acc[i] = T::zero();
  for (int64_t c = 0; c < cols; c += W) {  // cols is a multiple of 64
    const F wv = T::load(wrow + c);
    for (int i = 0; i < NR; i++) acc[i] = T::fma(wv, T::load(x + i * cols + c), acc[i]);
  }
  for (int i = 0; i < NR; i++) out[i * out_stride] = T::hsum(acc[i]);
}

template <class T>
void matmul_nf4_simd(const CpuContext& ctx, float* out, const float* x, const Weight& w, int64_t n) {
  using F = typename T::F;
  constexpr int W = T::W, NV = 64 / W;
  const int64_t rows = w.rows, cols = w.cols;
  const int nth = threads_for(ctx, rows, rows * cols * n);
  const bool fused = n <= 4;
  ScratchCarver carver(ctx.scratch);
  const size_t per_thread = generic_matmul_thread_bytes(cols);
  if (!fused && !carver.fits(size_t(nth) * per_thread)) {
    cpu_kernels_generic().matmul(ctx, out, x, w, n);  // scratch smaller than promised: stay correct
    return;
  }
  uint8_t* base = fused ? nullptr : carver.take(size_t(nth) * per_thread);
  run_threads(ctx, nth, [&](int ith, int nt) {
    const Range rr = part_of(rows, ith, nt);
    float* buf = base != nullptr ? reinterpret_cast<float*>(base + size_t(ith) * per_thread) : nullptr;
    for (int64_t r = rr.begin; r < rr.end; r++) {
      const uint8_t* codes = int4_codes_of(w, r);
      const float* scales = w.nf4_scales(r);
      if (fused) {
        switch (n) {
          case 1: nf4_row_fused<T, 1>(out + r, rows, codes, scales, x, cols); break;
          case 2: nf4_row_fused<T, 2>(out + r, rows, codes, scales, x, cols); break;
          case 3: nf4_row_fused<T, 3>(out + r, rows, codes, scales, x, cols); break;
          default: nf4_row_fused<T, 4>(out + r, rows, codes, scales, x, cols); break;
        }
        continue;
      }
      for (int64_t b = 0; b < cols / 64; b++) {
        F wv[NV];
        T::decode(wv, codes + 32 * b);
        const F d = T::set1(scales[b]);
        for (int v = 0; v < NV; v++) T::store(buf + 64 * b + v * W, T::mul(wv[v], d));
      }
      int64_t i = 0;
      for (; i + 4 <= n; i += 4) nf4_dot_rows<T, 4>(out + i * rows + r, rows, buf, x + i * cols, cols);
      switch (n - i) {
        case 3: nf4_dot_rows<T, 3>(out + i * rows + r, rows, buf, x + i * cols, cols); break;
        case 2: nf4_dot_rows<T, 2>(out + i * rows + r, rows, buf, x + i * cols, cols); break;
        case 1: nf4_dot_rows<T, 1>(out + i * rows + r, rows, buf, x + i * cols, cols); break;
        default: break;
      }
    }
  });
}

}  // namespace
}  // namespace lc
