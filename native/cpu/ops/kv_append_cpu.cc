#include "ops.h"

#include "../../core/half.h"

namespace lc {

void kv_append_cpu(const CpuContext&, const KvLayer& cache, const float* k, const float* v, int64_t n, int64_t pos) {
  const int64_t d = cache.kv_dim;
  for (int64_t i = 0; i < n; i++) {
    const int64_t row = (pos + i) * d;
    for (int64_t j = 0; j < d; j++) {
      if (cache.dtype == DType::F16) {
        static_cast<uint16_t*>(cache.k)[row + j] = f32_to_f16(k[i * d + j]);
        static_cast<uint16_t*>(cache.v)[row + j] = f32_to_f16(v[i * d + j]);
      } else {
        static_cast<float*>(cache.k)[row + j] = k[i * d + j];
        static_cast<float*>(cache.v)[row + j] = v[i * d + j];
      }
    }
  }
}

}  // namespace lc
