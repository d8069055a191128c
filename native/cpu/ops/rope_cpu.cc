#include "ops.h"

namespace lc {

void rope_cpu(const CpuContext&, float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t rope_dim,
              RopePairing pairing, const float* cos_sin) {
  const int64_t pairs = rope_dim / 2;
  for (int64_t i = 0; i < n; i++) {
    const float* cs = cos_sin + i * pairs * 2;
    for (int64_t h = 0; h < n_heads; h++) {
      float* v = x + (i * n_heads + h) * head_dim;
      for (int64_t p = 0; p < pairs; p++) {
        // the two dims rotated together by angle p
        const int64_t a = (pairing == RopePairing::Interleaved) ? 2 * p : p;
        const int64_t b = (pairing == RopePairing::Interleaved) ? 2 * p + 1 : p + pairs;
        const float c = cs[2 * p], s = cs[2 * p + 1];
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
      }
    }
  }
}

}  // namespace lc
