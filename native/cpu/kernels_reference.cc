#include "ops/ops.h"

namespace lc {

namespace {
size_t reference_scratch_bytes(const CpuScratchShape&) { return 0; }  // uses std::vector: clarity first
}  // namespace

const CpuKernels& cpu_kernels_reference() {
  static const CpuKernels table = {
      "reference", reference_scratch_bytes, embed_cpu,     rmsnorm_cpu, matmul_cpu, rope_cpu,
      kv_append_cpu, attention_cpu,         swiglu_cpu,    add_cpu,
  };
  return table;
}

}  // namespace lc
