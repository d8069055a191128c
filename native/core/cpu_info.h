// What this CPU is and which SIMD it has (for backendInfo() and `llama-cuda doctor`).
#pragma once

#include <string>
#include <vector>

namespace lc {

struct CpuInfo {
  std::string model;                  // "AMD EPYC ..." from /proc/cpuinfo, or the arch
  std::string arch;                   // x86_64, aarch64, ...
  std::vector<std::string> features;  // avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, ...
  int online_cpus = 1;
};

CpuInfo cpu_info();

}  // namespace lc
