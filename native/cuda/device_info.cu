// CUDA device discovery and a launch probe (see device_info.h).
#include <cuda_runtime.h>

#include <sstream>
#include <vector>

#include "cuda_arches.h"  // LC_CUDA_ARCHES, written by CMakeLists.txt
#include "device_info.h"

namespace lc {

namespace {

// probe: out[i] = 3 * i + 1 computed by every thread of a few blocks
__global__ void probe_kernel(int* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = 3 * i + 1;
}

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
    d.name = prop.name;
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
  probe_kernel<<<(n + 255) / 256, 256>>>(d_out, n);
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

}  // namespace lc
