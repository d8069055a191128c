// What the CUDA runtime sees: driver and runtime versions and each device. Host-only code,
// compiled by nvcc in the CUDA variant; the CPU variant reports "not compiled".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lc {

struct CudaDevice {
  int index = 0;
  std::string name;
  int major = 0;  // compute capability
  int minor = 0;
  uint64_t total_memory = 0;
  int multiprocessors = 0;
};

struct CudaInfo {
  bool compiled = false;   // this build has CUDA code
  int driver_version = 0;  // e.g. 13000 for 13.0; 0 when no driver
  int runtime_version = 0;
  std::vector<CudaDevice> devices;
  std::string error;  // why no device is usable, when none is
  std::vector<std::string> architectures;  // compiled SASS/PTX targets, e.g. sm_80 ... compute_90
};

CudaInfo cuda_info();

// Launches a small kernel and checks its result against the CPU: proves the build's code runs
// on this device. Returns "" on success or what went wrong.
std::string cuda_probe(int device);

}  // namespace lc
