// Tier selection, and the CPU feature checks in front of the SIMD tiers. This file is built
// with the baseline flags, so the checks run on any CPU before a tier's code does.
#include <string>

#include "kernels.h"

#if defined(LC_HAVE_X86_SIMD)
#include "simd/simd_tiers.h"
#endif

namespace lc {

#if defined(LC_HAVE_X86_SIMD)

// avx2 tier: its files are compiled with -mavx2 -mfma -mf16c -mbmi2, so all four are required
// (the compiler may use BMI2 anywhere in them).
const CpuKernels* cpu_kernels_avx2() {
  __builtin_cpu_init();
  const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") &&
                  __builtin_cpu_supports("bmi2");
  return ok ? &avx2_kernel_table() : nullptr;
}

// avx512 tier: everything avx2 needs plus AVX-512 F/BW/VL/DQ and VNNI (vpdpbusd is the int8
// dot product of the Q8_0 / INT4 matmul; CPUs with AVX-512 but no VNNI, i.e. Skylake-SP, use
// the avx2 tier). __builtin_cpu_supports also checks that the OS saves the zmm state.
const CpuKernels* cpu_kernels_avx512() {
  if (cpu_kernels_avx2() == nullptr) return nullptr;
  const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vnni");
  return ok ? &avx512_kernel_table() : nullptr;
}

#else

const CpuKernels* cpu_kernels_avx2() { return nullptr; }
const CpuKernels* cpu_kernels_avx512() { return nullptr; }

#endif

const CpuKernels* cpu_kernels_select(const std::string& name, std::string* why) {
  if (name == "reference") return &cpu_kernels_reference();
  if (name == "generic") return &cpu_kernels_generic();
  if (name == "avx2" || name == "avx512") {
    const CpuKernels* k = (name == "avx2") ? cpu_kernels_avx2() : cpu_kernels_avx512();
    if (k == nullptr && why != nullptr) {
#if defined(LC_HAVE_X86_SIMD)
      *why = name == "avx2" ? "this CPU lacks AVX2, FMA, F16C or BMI2 (needed by the avx2 tier)"
                            : "this CPU lacks AVX-512 F/BW/VL/DQ or VNNI (needed by the avx512 tier)";
#else
      *why = "this build has no x86 SIMD tiers (" + name + ")";
#endif
    }
    return k;
  }
  if (name == "auto") {
    if (const CpuKernels* k = cpu_kernels_avx512()) return k;
    if (const CpuKernels* k = cpu_kernels_avx2()) return k;
    return &cpu_kernels_generic();
  }
  if (why != nullptr) *why = "unknown CPU kernel tier: " + name + " (expected auto, reference, generic, avx2, avx512)";
  return nullptr;
}

}  // namespace lc
