// The driver probe: dlopen("libcuda.so.1") and a handful of driver API calls, declared here with
// the driver's C ABI (CUresult and CUdevice are ints; sizes are size_t) so no CUDA header is needed.
#include "core/cuda_driver_probe.h"

#include <cstddef>
#include <mutex>

#if defined(__linux__)
#include <dlfcn.h>
#endif

namespace lc {

namespace {

// cuda.h: CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, ..._MINOR = 76
constexpr int kAttrCcMajor = 75;
constexpr int kAttrCcMinor = 76;
constexpr int kErrorNoDevice = 100;  // CUDA_ERROR_NO_DEVICE

using FnInit = int (*)(unsigned int);
using FnDriverGetVersion = int (*)(int*);
using FnDeviceGetCount = int (*)(int*);
using FnDeviceGet = int (*)(int*, int);
using FnDeviceGetName = int (*)(char*, int, int);
using FnDeviceGetAttribute = int (*)(int*, int, int);
using FnDeviceTotalMem = int (*)(size_t*, int);
using FnGetErrorName = int (*)(int, const char**);
using FnGetErrorString = int (*)(int, const char**);

#if defined(__linux__)
// "cuInit failed: CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)"
std::string cu_error(void* lib, const char* call, int code) {
  std::string text = std::string(call) + " failed: error " + std::to_string(code);
  auto get_name = reinterpret_cast<FnGetErrorName>(dlsym(lib, "cuGetErrorName"));
  auto get_string = reinterpret_cast<FnGetErrorString>(dlsym(lib, "cuGetErrorString"));
  const char* name = nullptr;
  const char* desc = nullptr;
  if (get_name != nullptr && get_name(code, &name) == 0 && name != nullptr) {
    text = std::string(call) + " failed: " + name;
  }
  if (get_string != nullptr && get_string(code, &desc) == 0 && desc != nullptr) {
    text += std::string(" (") + desc + ")";
  }
  return text;
}

DriverProbe probe() {
  DriverProbe out;
  // libcuda.so.1 is the driver's soname (the unversioned libcuda.so is a toolkit/dev symlink)
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    // dlerror() reads "libcuda.so.1: cannot open shared object file: No such file or directory"
    out.error = std::string("no NVIDIA driver: ") + (why != nullptr ? why : "libcuda.so.1 could not be opened");
    return out;
  }
  out.library = "libcuda.so.1";
  // The library stays open: the CUDA runtime of a CUDA build opens the same one, and closing a
  // driver after cuInit is not supported.
  auto init = reinterpret_cast<FnInit>(dlsym(lib, "cuInit"));
  auto get_version = reinterpret_cast<FnDriverGetVersion>(dlsym(lib, "cuDriverGetVersion"));
  auto get_count = reinterpret_cast<FnDeviceGetCount>(dlsym(lib, "cuDeviceGetCount"));
  auto get_device = reinterpret_cast<FnDeviceGet>(dlsym(lib, "cuDeviceGet"));
  auto get_name = reinterpret_cast<FnDeviceGetName>(dlsym(lib, "cuDeviceGetName"));
  auto get_attr = reinterpret_cast<FnDeviceGetAttribute>(dlsym(lib, "cuDeviceGetAttribute"));
  auto total_mem = reinterpret_cast<FnDeviceTotalMem>(dlsym(lib, "cuDeviceTotalMem_v2"));
  if (init == nullptr || get_version == nullptr || get_count == nullptr || get_device == nullptr ||
      get_name == nullptr || get_attr == nullptr || total_mem == nullptr) {
    out.error = "libcuda.so.1 lacks a driver API entry point (cuInit, cuDeviceTotalMem_v2, ...): the driver is too old or broken";
    return out;
  }
  // the version works before cuInit, so it is reported even when cuInit fails
  if (int rc = get_version(&out.driver_version); rc != 0) out.driver_version = 0;
  if (int rc = init(0); rc != 0) {
    out.error = cu_error(lib, "cuInit", rc);
    if (rc == kErrorNoDevice) out.error += ": the driver sees no NVIDIA GPU";
    return out;
  }
  int count = 0;
  if (int rc = get_count(&count); rc != 0) {
    out.error = cu_error(lib, "cuDeviceGetCount", rc);
    return out;
  }
  for (int i = 0; i < count; i++) {
    int dev = 0;
    if (int rc = get_device(&dev, i); rc != 0) {
      out.error = cu_error(lib, "cuDeviceGet", rc);
      return out;
    }
    DriverDevice d;
    char name[256] = {0};
    if (get_name(name, int(sizeof(name)) - 1, dev) == 0) d.name = name;
    get_attr(&d.major, kAttrCcMajor, dev);
    get_attr(&d.minor, kAttrCcMinor, dev);
    size_t bytes = 0;
    if (total_mem(&bytes, dev) == 0) d.total_memory = uint64_t(bytes);
    out.devices.push_back(d);
  }
  if (out.devices.empty()) {
    out.error = "the NVIDIA driver is loaded but reports no device";
    return out;
  }
  out.available = true;
  return out;
}
#else
DriverProbe probe() {
  DriverProbe out;
  out.error = "the CUDA driver probe is implemented for Linux only";
  return out;
}
#endif

}  // namespace

const DriverProbe& cuda_driver_probe() {
  static std::once_flag once;
  static DriverProbe result;
  std::call_once(once, [] { result = probe(); });
  return result;
}

}  // namespace lc
