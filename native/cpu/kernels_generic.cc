// TEMPORARY: the generic tier is being written (see the CPU kernels task); until then it
// forwards to the reference so the engine links.
#include "ops/ops.h"

namespace lc {

const CpuKernels& cpu_kernels_generic() { return cpu_kernels_reference(); }
const CpuKernels* cpu_kernels_avx2() { return nullptr; }
const CpuKernels* cpu_kernels_avx512() { return nullptr; }

}  // namespace lc
