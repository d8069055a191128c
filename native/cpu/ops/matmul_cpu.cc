#include <vector>

#include "ops.h"

#include "../../core/dequant.h"

namespace lc {

// out[n][rows] = x[n][cols] . W^T, with each weight row dequantized to f32 exactly and the dot
// product accumulated in double: the oracle the fast tiers are held to.
void matmul_cpu(const CpuContext&, float* out, const float* x, const Weight& w, int64_t n) {
  std::vector<float> row(size_t(w.cols));
  for (int64_t r = 0; r < w.rows; r++) {
    dequantize_row(row.data(), w, r);
    for (int64_t i = 0; i < n; i++) {
      const float* xi = x + i * w.cols;
      double acc = 0.0;
      for (int64_t c = 0; c < w.cols; c++) acc += double(row[size_t(c)]) * double(xi[c]);
      out[i * w.rows + r] = float(acc);
    }
  }
}

}  // namespace lc
