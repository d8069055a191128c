#include <cmath>
#include <vector>

#include "ops.h"

#include "../../core/half.h"

namespace lc {

namespace {
float cache_at(const KvLayer& cache, const void* base, int64_t index) {
  return cache.dtype == DType::F16 ? f16_to_f32(static_cast<const uint16_t*>(base)[index])
                                   : static_cast<const float*>(base)[index];
}
}  // namespace

void attention_cpu(const CpuContext&, float* out, const float* q, const KvLayer& cache, int64_t n, int64_t pos,
                   int64_t n_heads, int64_t n_kv_heads, int64_t head_dim) {
  const int64_t kv_mul = n_heads / n_kv_heads;
  const int64_t kv_dim = cache.kv_dim;
  const double scale = 1.0 / std::sqrt(double(head_dim));
  std::vector<double> att(size_t(pos + n));
  for (int64_t i = 0; i < n; i++) {
    const int64_t len = pos + i + 1;  // causal: keys 0 .. pos + i
    for (int64_t h = 0; h < n_heads; h++) {
      const float* qh = q + (i * n_heads + h) * head_dim;
      const int64_t kv_off = (h / kv_mul) * head_dim;
      double max_score = -INFINITY;
      for (int64_t t = 0; t < len; t++) {
        double s = 0.0;
        for (int64_t d = 0; d < head_dim; d++) s += double(qh[d]) * cache_at(cache, cache.k, t * kv_dim + kv_off + d);
        att[size_t(t)] = s * scale;
        if (att[size_t(t)] > max_score) max_score = att[size_t(t)];
      }
      double sum = 0.0;
      for (int64_t t = 0; t < len; t++) {
        att[size_t(t)] = std::exp(att[size_t(t)] - max_score);
        sum += att[size_t(t)];
      }
      float* oh = out + (i * n_heads + h) * head_dim;
      for (int64_t d = 0; d < head_dim; d++) {
        double acc = 0.0;
        for (int64_t t = 0; t < len; t++) acc += att[size_t(t)] * cache_at(cache, cache.v, t * kv_dim + kv_off + d);
        oh[d] = float(acc / sum);
      }
    }
  }
}

}  // namespace lc
