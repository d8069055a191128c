#include "cpu_info.h"

#include <fstream>
#include <thread>

namespace lc {

CpuInfo cpu_info() {
  CpuInfo info;
#if defined(__x86_64__) || defined(_M_X64)
  info.arch = "x86_64";
  __builtin_cpu_init();
  struct Feature {
    const char* name;
    bool present;
  };
  const Feature features[] = {
      {"sse4.2", bool(__builtin_cpu_supports("sse4.2"))},   {"avx", bool(__builtin_cpu_supports("avx"))},
      {"avx2", bool(__builtin_cpu_supports("avx2"))},       {"fma", bool(__builtin_cpu_supports("fma"))},
      {"f16c", bool(__builtin_cpu_supports("f16c"))},       {"avx512f", bool(__builtin_cpu_supports("avx512f"))},
      {"avx512bw", bool(__builtin_cpu_supports("avx512bw"))}, {"avx512vl", bool(__builtin_cpu_supports("avx512vl"))},
      {"avx512vnni", bool(__builtin_cpu_supports("avx512vnni"))},
      {"avx512bf16", bool(__builtin_cpu_supports("avx512bf16"))},
  };
  for (const Feature& f : features) {
    if (f.present) info.features.push_back(f.name);
  }
#elif defined(__aarch64__)
  info.arch = "aarch64";
#else
  info.arch = "unknown";
#endif
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    if (key == "model name" || key == "Model" || key == "Hardware") {
      info.model = line.substr(colon + 2);
      break;
    }
  }
  if (info.model.empty()) info.model = info.arch;
  const unsigned hw = std::thread::hardware_concurrency();
  info.online_cpus = hw == 0 ? 1 : int(hw);
  return info;
}

}  // namespace lc
