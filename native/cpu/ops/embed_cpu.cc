#include "ops.h"

#include "../../core/dequant.h"

namespace lc {

void embed_cpu(const CpuContext&, float* out, const Weight& table, const int32_t* tokens, int64_t n) {
  for (int64_t i = 0; i < n; i++) dequantize_row(out + i * table.cols, table, tokens[i]);
}

}  // namespace lc
