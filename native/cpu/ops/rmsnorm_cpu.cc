#include <cmath>

#include "ops.h"

namespace lc {

void rmsnorm_cpu(const CpuContext&, float* out, const float* x, const float* w, int64_t n, int64_t dim, float eps) {
  for (int64_t i = 0; i < n; i++) {
    const float* xi = x + i * dim;
    float* oi = out + i * dim;
    double ss = 0.0;
    for (int64_t j = 0; j < dim; j++) ss += double(xi[j]) * double(xi[j]);
    const float scale = float(1.0 / std::sqrt(ss / double(dim) + double(eps)));
    for (int64_t j = 0; j < dim; j++) oi[j] = w[j] * (scale * xi[j]);
  }
}

}  // namespace lc
