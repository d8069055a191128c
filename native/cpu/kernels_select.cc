#include <string>

#include "kernels.h"

namespace lc {

const CpuKernels* cpu_kernels_select(const std::string& name, std::string* why) {
  if (name == "reference") return &cpu_kernels_reference();
  if (name == "generic") return &cpu_kernels_generic();
  if (name == "avx2" || name == "avx512") {
    const CpuKernels* k = (name == "avx2") ? cpu_kernels_avx2() : cpu_kernels_avx512();
    if (k == nullptr && why != nullptr) *why = "this CPU or build lacks " + name;
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
