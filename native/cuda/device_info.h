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

// Free and total device memory (cudaMemGetInfo). Returns "" on success or the CUDA error.
std::string cuda_memory_info(int device, uint64_t* free_bytes, uint64_t* total_bytes);

#if defined(LC_SIMT_ADDON) && LC_SIMT_ADDON
// The emulator build only, for tests: runs a kernel that traps, which leaves the (emulated) CUDA
// context with a sticky error, as a faulting kernel does on a GPU. Returns the error's name.
std::string simt_inject_fault();
#endif

}  // namespace lc
