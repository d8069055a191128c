// CUDA device discovery and a launch probe (see device_info.h). Compiled by nvcc in the 'cuda'
// build and against the SIMT emulator in the 'simt' build (one device, "SIMT emulator").
#include <sstream>
#include <vector>

#include "cuda_api.h"
#include "cuda_arches.h"  // LC_CUDA_ARCHES, written by CMakeLists.txt ("simt" in the emulator build)
#include "device_info.h"
#include "launch.cuh"

namespace lc {

namespace {

// probe: out[i] = 3 * i + 1 computed by every thread of a few blocks
__global__ void probe_kernel(int* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = 3 * i + 1;
}

#if defined(LC_SIMT_ADDON) && LC_SIMT_ADDON
// fault: every thread traps (a sticky launch failure, for the emulator build's tests)
__global__ void trap_kernel() { __trap(); }
#endif

std::string cuda_text(cudaError_t err) { return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err); }

}  // namespace

CudaInfo cuda_info() {
  CudaInfo info;
  info.compiled = true;
  std::istringstream arches(LC_CUDA_ARCHES);
  for (std::string a; arches >> a;) info.architectures.push_back(a);
  cudaRuntimeGetVersion(&info.runtime_version);
  cudaError_t err = cudaDriverGetVersion(&info.driver_version);
  if (err != cudaSuccess || info.driver_version == 0) {
    info.error = "no NVIDIA driver found (libcuda.so.1 could not be loaded)";
    return info;
  }
  int count = 0;
  err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    info.error = cuda_text(err);
    return info;
  }
  for (int i = 0; i < count; i++) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    CudaDevice d;
    d.index = i;
    d.name = LC_SIMT ? "SIMT emulator" : prop.name;
    d.major = prop.major;
    d.minor = prop.minor;
    d.total_memory = prop.totalGlobalMem;
    d.multiprocessors = prop.multiProcessorCount;
    info.devices.push_back(d);
  }
  if (info.devices.empty()) info.error = "the driver reports no CUDA devices";
  return info;
}

std::string cuda_probe(int device) {
  cudaError_t err = cudaSetDevice(device);
  if (err != cudaSuccess) return cuda_text(err);
  const int n = 1000;
  int* d_out = nullptr;
  err = cudaMalloc(&d_out, n * sizeof(int));
  if (err != cudaSuccess) return cuda_text(err);
  LC_LAUNCH(probe_kernel, (n + 255) / 256, 256, 0, nullptr, d_out, n);
  err = cudaGetLastError();
  std::vector<int> host(n, 0);
  if (err == cudaSuccess) err = cudaMemcpy(host.data(), d_out, n * sizeof(int), cudaMemcpyDeviceToHost);
  cudaFree(d_out);
  if (err != cudaSuccess) return cuda_text(err);
  for (int i = 0; i < n; i++) {
    if (host[i] != 3 * i + 1) return "probe kernel result mismatch at " + std::to_string(i);
  }
  return "";
}

std::string cuda_memory_info(int device, uint64_t* free_bytes, uint64_t* total_bytes) {
  cudaError_t err = cudaSetDevice(device);
  size_t f = 0, t = 0;
  if (err == cudaSuccess) err = cudaMemGetInfo(&f, &t);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return cuda_text(err);
  }
  *free_bytes = f;
  *total_bytes = t;
  return "";
}

#if defined(LC_SIMT_ADDON) && LC_SIMT_ADDON
std::string simt_inject_fault() {
  LC_LAUNCH(trap_kernel, 1, 32, 0, nullptr);
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) err = cudaDeviceSynchronize();
  return cudaGetErrorName(err);
}
#endif

}  // namespace lc
