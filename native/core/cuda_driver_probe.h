// What the NVIDIA driver says, without the CUDA toolkit: libcuda.so.1 is opened with dlopen and
// asked through the driver API (cuInit, cuDriverGetVersion, cuDeviceGet*). Compiled into every
// build, the CPU one included, so the loader can pick the CUDA build for the GPU's compute
// capability before loading any CUDA code. Never aborts: a missing or failing driver is an error
// string in the result.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lc {

struct DriverDevice {
  std::string name;
  int major = 0;  // compute capability
  int minor = 0;
  uint64_t total_memory = 0;  // bytes
};

struct DriverProbe {
  bool available = false;  // libcuda loaded, cuInit succeeded and at least one device is seen
  int driver_version = 0;  // CUDA version the driver supports, 1000*major + 10*minor (13000 = 13.0)
  std::vector<DriverDevice> devices;
  std::string library;  // the library that was opened ("" when none)
  std::string error;    // why not available ("" when available)
};

// Probes once per process (the result is cached: cuInit's answer does not change).
const DriverProbe& cuda_driver_probe();

}  // namespace lc
