// The op tables of the x86 SIMD tiers, defined in files compiled with the tier's flags
// (kernels_avx2.cc: -mavx2 -mfma -mf16c -mbmi2; kernels_avx512.cc: adds AVX-512
// F/BW/VL/DQ/VNNI). Call them only after checking the CPU: cpu_kernels_avx2() and
// cpu_kernels_avx512() in kernels_select.cc do that, in a file built without those flags.
#pragma once

#include "../kernels.h"

namespace lc {

const CpuKernels& avx2_kernel_table();
const CpuKernels& avx512_kernel_table();

}  // namespace lc
