// SIMT emulator: the CUDA runtime API on the CPU (declarations: the toolkit's cuda_runtime_api.h).
// See cuda_runtime_simt.h for what is modeled. Everything runs synchronously on the calling OS
// thread under one lock; kernel launches go to the scheduler (scheduler.cc).
#include "cuda_runtime_simt.h"

#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "simt_internal.h"

namespace lc_simt {
namespace {

// One recorded operation of a captured stream.
struct Op {
  enum class Kind { Kernel, Memcpy, Memset, HostFn } kind = Kind::Kernel;
  LaunchConfig cfg{};
  KernelEntry entry = nullptr;
  std::shared_ptr<void> closure;
  void* dst = nullptr;
  const void* src = nullptr;
  size_t bytes = 0;
  int value = 0;
  cudaMemcpyKind copy_kind = cudaMemcpyDefault;
  cudaHostFn_t fn = nullptr;
  void* user = nullptr;
};

}  // namespace
}  // namespace lc_simt

struct CUstream_st {
  unsigned flags = 0;
  bool capturing = false;
  bool invalidated = false;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::vector<lc_simt::Op> captured;
};
struct CUevent_st {
  unsigned flags = 0;
  bool recorded = false;
  std::chrono::steady_clock::time_point time;
};
struct CUgraph_st {
  std::vector<lc_simt::Op> ops;
};
struct CUgraphExec_st {
  std::vector<lc_simt::Op> ops;
};

namespace lc_simt {
namespace {

constexpr size_t kAlign = 256;
constexpr size_t kSmemDefault = 48 * 1024;     // dynamic shared memory without the opt-in attribute
constexpr size_t kSmemOptin = 163 * 1024;      // sm_80 sharedMemPerBlockOptin
constexpr size_t kSmemPerSm = 164 * 1024;      // sm_80 sharedMemPerMultiprocessor

struct Alloc {
  size_t size;
  bool device;  // false: cudaMallocHost / cudaHostAlloc
};

struct Device {
  std::recursive_mutex mu;
  std::map<uintptr_t, Alloc> allocs;
  size_t used = 0;
  size_t limit = 0;  // 0: none
  bool poison = true;
  int sms = 108;     // A100's count: kernels pick the same splits as on an sm_80 part
  std::set<CUstream_st*> streams;
  std::set<CUevent_st*> events;
  std::set<CUgraph_st*> graphs;
  std::set<CUgraphExec_st*> execs;
  std::map<const void*, int> max_dynamic_smem;
  cudaError_t sticky = cudaSuccess;  // a kernel fault: every later call returns it until reset
  const char* sticky_text = nullptr;  // "unspecified launch failure [report]"
  const char* last_report = "";
  std::set<std::string> texts;  // interned report strings: pointers handed out stay valid
};

size_t parse_bytes(const char* s) {
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (!end || end == s || v <= 0) return 0;
  double mul = 1;
  switch (*end) {
    case 'k': case 'K': mul = 1024.0; break;
    case 'm': case 'M': mul = 1024.0 * 1024; break;
    case 'g': case 'G': mul = 1024.0 * 1024 * 1024; break;
    default: break;
  }
  return static_cast<size_t>(v * mul);
}

Device& dev() {
  static Device* d = [] {
    Device* x = new Device;  // never destroyed: may be used while the process exits
    if (const char* env = std::getenv("LLAMA_CUDA_SIMT_MEMORY")) x->limit = parse_bytes(env);
    if (const char* env = std::getenv("LLAMA_CUDA_SIMT_POISON")) x->poison = std::strcmp(env, "0") != 0;
    if (const char* env = std::getenv("LLAMA_CUDA_SIMT_SMS")) {
      const long v = std::strtol(env, nullptr, 10);
      if (v >= 1 && v <= 1024) x->sms = static_cast<int>(v);
    }
    return x;
  }();
  return *d;
}

thread_local cudaError_t t_last_error = cudaSuccess;

cudaError_t record(cudaError_t e) {
  if (e != cudaSuccess) t_last_error = e;
  return e;
}

const char* intern(Device& d, const std::string& s) { return d.texts.insert(s).first->c_str(); }

size_t physical_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : (16ull << 30);
}

size_t total_memory(const Device& d) { return d.limit ? d.limit : physical_memory(); }

// The allocation holding [p, p + n), or nullptr.
const Alloc* find_alloc(const Device& d, const void* p, size_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = d.allocs.upper_bound(a);
  if (it == d.allocs.begin()) return nullptr;
  --it;
  if (a < it->first || a + n > it->first + it->second.size || a + n < a) return nullptr;
  return &it->second;
}

bool is_device_range(const Device& d, const void* p, size_t n) {
  const Alloc* a = find_alloc(d, p, n);
  return a && a->device;
}

bool is_default_stream(cudaStream_t s) { return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread; }

// Resolves a stream handle: true with *out = nullptr for the default stream.
bool resolve(Device& d, cudaStream_t s, CUstream_st** out) {
  *out = nullptr;
  if (is_default_stream(s)) return true;
  if (!d.streams.count(s)) return false;
  *out = s;
  return true;
}

bool blocking_capture_active(const Device& d) {
  for (CUstream_st* s : d.streams) {
    if (s->capturing && s->mode != cudaStreamCaptureModeRelaxed) return true;
  }
  return false;
}

void invalidate_captures(Device& d) {
  for (CUstream_st* s : d.streams) {
    if (s->capturing) s->invalidated = true;
  }
}

// A synchronous call (cudaMemcpy, cudaMalloc, cudaDeviceSynchronize, ...) while a stream is being
// captured in global/thread-local mode is refused and spoils the capture, as on a GPU.
cudaError_t check_not_capturing(Device& d) {
  if (!blocking_capture_active(d)) return cudaSuccess;
  invalidate_captures(d);
  return cudaErrorStreamCaptureUnsupported;
}

// Where an asynchronous operation goes: recorded into a capture (*capture set), refused, or run.
cudaError_t route(Device& d, cudaStream_t stream, CUstream_st** capture) {
  CUstream_st* s = nullptr;
  *capture = nullptr;
  if (!resolve(d, stream, &s)) return cudaErrorInvalidResourceHandle;
  if (s && s->capturing) {
    *capture = s;
    return cudaSuccess;
  }
  if (!s && stream != cudaStreamPerThread && blocking_capture_active(d)) {
    invalidate_captures(d);  // the legacy stream would have to wait for the capturing stream
    return cudaErrorStreamCaptureImplicit;
  }
  return cudaSuccess;
}

cudaError_t memcpy_now(Device& d, void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  if (n == 0) return cudaSuccess;
  if (!dst || !src) return cudaErrorInvalidValue;
  switch (kind) {
    case cudaMemcpyHostToHost:
    case cudaMemcpyDefault:
      break;
    case cudaMemcpyHostToDevice:
      if (!is_device_range(d, dst, n)) return cudaErrorInvalidValue;
      break;
    case cudaMemcpyDeviceToHost:
      if (!is_device_range(d, src, n)) return cudaErrorInvalidValue;
      break;
    case cudaMemcpyDeviceToDevice:
      if (!is_device_range(d, dst, n) || !is_device_range(d, src, n)) return cudaErrorInvalidValue;
      break;
    default:
      return cudaErrorInvalidMemcpyDirection;
  }
  std::memmove(dst, src, n);
  return cudaSuccess;
}

cudaError_t memset_now(Device& d, void* dst, int value, size_t n) {
  if (n == 0) return cudaSuccess;
  if (!is_device_range(d, dst, n)) return cudaErrorInvalidValue;
  std::memset(dst, value, n);
  return cudaSuccess;
}

cudaError_t validate_launch(Device& d, const LaunchConfig& cfg) {
  const dim3 b = cfg.block, g = cfg.grid;
  if (b.x == 0 || b.y == 0 || b.z == 0 || b.x > 1024 || b.y > 1024 || b.z > 64 ||
      static_cast<uint64_t>(b.x) * b.y * b.z > 1024) {
    return cudaErrorInvalidConfiguration;
  }
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 2147483647u || g.y > 65535 || g.z > 65535) {
    return cudaErrorInvalidConfiguration;
  }
  auto it = d.max_dynamic_smem.find(cfg.func);
  const size_t limit = it == d.max_dynamic_smem.end() ? kSmemDefault : static_cast<size_t>(it->second);
  if (cfg.smem > limit) return cudaErrorInvalidValue;
  return cudaSuccess;
}

cudaError_t launch_now(Device& d, const LaunchConfig& cfg, KernelEntry entry, void* closure) {
  std::string report;
  const cudaError_t e = detail::run_kernel(cfg, entry, closure, &report);
  if (e == cudaSuccess) return e;
  d.last_report = intern(d, report);
  if (e == cudaErrorLaunchFailure || e == cudaErrorMisalignedAddress) {  // a fault while running: sticky, as on a GPU
    d.sticky = e;
    const char* base = "";
    switch (e) {
      case cudaErrorMisalignedAddress: base = "misaligned address"; break;
      default: base = "unspecified launch failure"; break;
    }
    d.sticky_text = intern(d, std::string(base) + " [" + report + "]");
    if (const char* v = std::getenv("LLAMA_CUDA_SIMT_VERBOSE"); v && std::strcmp(v, "0") != 0) {
      std::fprintf(stderr, "%s\n", report.c_str());
    }
  }
  return e;
}

cudaError_t run_op(Device& d, const Op& op, cudaStream_t stream) {
  switch (op.kind) {
    case Op::Kind::Kernel: {
      LaunchConfig cfg = op.cfg;
      cfg.stream = stream;
      return launch_now(d, cfg, op.entry, op.closure.get());
    }
    case Op::Kind::Memcpy: return memcpy_now(d, op.dst, op.src, op.bytes, op.copy_kind);
    case Op::Kind::Memset: return memset_now(d, op.dst, op.value, op.bytes);
    case Op::Kind::HostFn: op.fn(op.user); return cudaSuccess;
  }
  return cudaErrorUnknown;
}

struct ErrorText {
  cudaError_t code;
  const char* name;
  const char* text;
};

#define LC_ERR(code, text) {code, #code, text}
const ErrorText kErrors[] = {
    LC_ERR(cudaSuccess, "no error"),
    LC_ERR(cudaErrorInvalidValue, "invalid argument"),
    LC_ERR(cudaErrorMemoryAllocation, "out of memory"),
    LC_ERR(cudaErrorInitializationError, "initialization error"),
    LC_ERR(cudaErrorCudartUnloading, "driver shutting down"),
    LC_ERR(cudaErrorProfilerDisabled, "profiler disabled while using external profiling tool"),
    LC_ERR(cudaErrorProfilerNotInitialized, "profiler not initialized: call cudaProfilerInitialize()"),
    LC_ERR(cudaErrorProfilerAlreadyStarted, "profiler already started"),
    LC_ERR(cudaErrorProfilerAlreadyStopped, "profiler already stopped"),
    LC_ERR(cudaErrorInvalidConfiguration, "invalid configuration argument"),
    LC_ERR(cudaErrorInvalidPitchValue, "invalid pitch argument"),
    LC_ERR(cudaErrorInvalidSymbol, "invalid device symbol"),
    LC_ERR(cudaErrorInvalidHostPointer, "invalid host pointer"),
    LC_ERR(cudaErrorInvalidDevicePointer, "invalid device pointer"),
    LC_ERR(cudaErrorInvalidTexture, "invalid texture reference"),
    LC_ERR(cudaErrorInvalidTextureBinding, "texture is not bound to a pointer"),
    LC_ERR(cudaErrorInvalidChannelDescriptor, "invalid channel descriptor"),
    LC_ERR(cudaErrorInvalidMemcpyDirection, "invalid copy direction for memcpy"),
    LC_ERR(cudaErrorAddressOfConstant, "invalid address of constant"),
    LC_ERR(cudaErrorTextureFetchFailed, "fetch from texture failed"),
    LC_ERR(cudaErrorTextureNotBound, "cannot fetch from a texture that is not bound"),
    LC_ERR(cudaErrorSynchronizationError, "incorrect use of __syncthreads()"),
    LC_ERR(cudaErrorInvalidFilterSetting, "linear filtering not supported for non-float type"),
    LC_ERR(cudaErrorInvalidNormSetting, "read as normalized float not supported for data type"),
    LC_ERR(cudaErrorMixedDeviceExecution, "device emulation mode and device execution mode cannot be mixed"),
    LC_ERR(cudaErrorNotYetImplemented, "feature not yet implemented"),
    LC_ERR(cudaErrorMemoryValueTooLarge, "memory size or pointer value too large to fit in 32 bit"),
    LC_ERR(cudaErrorStubLibrary, "CUDA driver is a stub library"),
    LC_ERR(cudaErrorInsufficientDriver, "CUDA driver version is insufficient for CUDA runtime version"),
    LC_ERR(cudaErrorCallRequiresNewerDriver, "API call is not supported in the installed CUDA driver"),
    LC_ERR(cudaErrorInvalidSurface, "invalid surface reference"),
    LC_ERR(cudaErrorDuplicateVariableName, "duplicate global variable looked up by string name"),
    LC_ERR(cudaErrorDuplicateTextureName, "duplicate texture looked up by string name"),
    LC_ERR(cudaErrorDuplicateSurfaceName, "duplicate surface looked up by string name"),
    LC_ERR(cudaErrorDevicesUnavailable, "CUDA-capable device(s) is/are busy or unavailable"),
    LC_ERR(cudaErrorIncompatibleDriverContext, "incompatible driver context"),
    LC_ERR(cudaErrorMissingConfiguration, "__global__ function call is not configured"),
    LC_ERR(cudaErrorPriorLaunchFailure, "unspecified launch failure in prior launch"),
    LC_ERR(cudaErrorLaunchMaxDepthExceeded, "launch would exceed maximum depth of nested launches"),
    LC_ERR(cudaErrorLaunchFileScopedTex, "launch failed because kernel uses unsupported, file-scoped textures (texture objects are supported)"),
    LC_ERR(cudaErrorLaunchFileScopedSurf, "launch failed because kernel uses unsupported, file-scoped surfaces (surface objects are supported)"),
    LC_ERR(cudaErrorSyncDepthExceeded, "cudaDeviceSynchronize failed because caller's grid depth exceeds cudaLimitDevRuntimeSyncDepth"),
    LC_ERR(cudaErrorLaunchPendingCountExceeded, "launch failed because launch would exceed cudaLimitDevRuntimePendingLaunchCount"),
    LC_ERR(cudaErrorInvalidDeviceFunction, "invalid device function"),
    LC_ERR(cudaErrorNoDevice, "no CUDA-capable device is detected"),
    LC_ERR(cudaErrorInvalidDevice, "invalid device ordinal"),
    LC_ERR(cudaErrorDeviceNotLicensed, "device doesn't have valid Grid license"),
    LC_ERR(cudaErrorSoftwareValidityNotEstablished, "integrity checks failed"),
    LC_ERR(cudaErrorStartupFailure, "startup failure in cuda runtime"),
    LC_ERR(cudaErrorInvalidKernelImage, "device kernel image is invalid"),
    LC_ERR(cudaErrorDeviceUninitialized, "invalid device context"),
    LC_ERR(cudaErrorMapBufferObjectFailed, "mapping of buffer object failed"),
    LC_ERR(cudaErrorUnmapBufferObjectFailed, "unmapping of buffer object failed"),
    LC_ERR(cudaErrorArrayIsMapped, "array is mapped"),
    LC_ERR(cudaErrorAlreadyMapped, "resource already mapped"),
    LC_ERR(cudaErrorNoKernelImageForDevice, "no kernel image is available for execution on the device"),
    LC_ERR(cudaErrorAlreadyAcquired, "resource already acquired"),
    LC_ERR(cudaErrorNotMapped, "resource not mapped"),
    LC_ERR(cudaErrorNotMappedAsArray, "resource not mapped as array"),
    LC_ERR(cudaErrorNotMappedAsPointer, "resource not mapped as pointer"),
    LC_ERR(cudaErrorECCUncorrectable, "uncorrectable ECC error encountered"),
    LC_ERR(cudaErrorUnsupportedLimit, "limit is not supported on this architecture"),
    LC_ERR(cudaErrorDeviceAlreadyInUse, "exclusive-thread device already in use by a different thread"),
    LC_ERR(cudaErrorPeerAccessUnsupported, "peer access is not supported between these two devices"),
    LC_ERR(cudaErrorInvalidPtx, "a PTX JIT compilation failed"),
    LC_ERR(cudaErrorInvalidGraphicsContext, "invalid OpenGL or DirectX context"),
    LC_ERR(cudaErrorNvlinkUncorrectable, "uncorrectable NVLink error detected during the execution"),
    LC_ERR(cudaErrorJitCompilerNotFound, "PTX JIT compiler library not found"),
    LC_ERR(cudaErrorUnsupportedPtxVersion, "the provided PTX was compiled with an unsupported toolchain."),
    LC_ERR(cudaErrorJitCompilationDisabled, "PTX JIT compilation was disabled"),
    LC_ERR(cudaErrorUnsupportedExecAffinity, "the provided execution affinity is not supported"),
    LC_ERR(cudaErrorUnsupportedDevSideSync, "the provided PTX contains unsupported call to cudaDeviceSynchronize"),
    LC_ERR(cudaErrorContained, "Invalid access of peer GPU memory over nvlink or a hardware error"),
    LC_ERR(cudaErrorInvalidSource, "device kernel image is invalid"),
    LC_ERR(cudaErrorFileNotFound, "file not found"),
    LC_ERR(cudaErrorSharedObjectSymbolNotFound, "shared object symbol not found"),
    LC_ERR(cudaErrorSharedObjectInitFailed, "shared object initialization failed"),
    LC_ERR(cudaErrorOperatingSystem, "OS call failed or operation not supported on this OS"),
    LC_ERR(cudaErrorInvalidResourceHandle, "invalid resource handle"),
    LC_ERR(cudaErrorIllegalState, "the operation cannot be performed in the present state"),
    LC_ERR(cudaErrorLossyQuery, "attempted introspection would be semantically lossy"),
    LC_ERR(cudaErrorSymbolNotFound, "named symbol not found"),
    LC_ERR(cudaErrorNotReady, "device not ready"),
    LC_ERR(cudaErrorIllegalAddress, "an illegal memory access was encountered"),
    LC_ERR(cudaErrorLaunchOutOfResources, "too many resources requested for launch"),
    LC_ERR(cudaErrorLaunchTimeout, "the launch timed out and was terminated"),
    LC_ERR(cudaErrorLaunchIncompatibleTexturing, "launch uses incompatible texturing mode"),
    LC_ERR(cudaErrorPeerAccessAlreadyEnabled, "peer access is already enabled"),
    LC_ERR(cudaErrorPeerAccessNotEnabled, "peer access has not been enabled"),
    LC_ERR(cudaErrorSetOnActiveProcess, "cannot set while device is active in this process"),
    LC_ERR(cudaErrorContextIsDestroyed, "context is destroyed"),
    LC_ERR(cudaErrorAssert, "device-side assert triggered"),
    LC_ERR(cudaErrorTooManyPeers, "peer mapping resources exhausted"),
    LC_ERR(cudaErrorHostMemoryAlreadyRegistered, "part or all of the requested memory range is already mapped"),
    LC_ERR(cudaErrorHostMemoryNotRegistered, "pointer does not correspond to a registered memory region"),
    LC_ERR(cudaErrorHardwareStackError, "hardware stack error"),
    LC_ERR(cudaErrorIllegalInstruction, "an illegal instruction was encountered"),
    LC_ERR(cudaErrorMisalignedAddress, "misaligned address"),
    LC_ERR(cudaErrorInvalidAddressSpace, "operation not supported on global/shared address space"),
    LC_ERR(cudaErrorInvalidPc, "invalid program counter"),
    LC_ERR(cudaErrorLaunchFailure, "unspecified launch failure"),
    LC_ERR(cudaErrorCooperativeLaunchTooLarge, "too many blocks in cooperative launch"),
    LC_ERR(cudaErrorTensorMemoryLeak, "tensor memory not completely freed"),
    LC_ERR(cudaErrorNotPermitted, "operation not permitted"),
    LC_ERR(cudaErrorNotSupported, "operation not supported"),
    LC_ERR(cudaErrorSystemNotReady, "system not yet initialized"),
    LC_ERR(cudaErrorSystemDriverMismatch, "system has unsupported display driver / cuda driver combination"),
    LC_ERR(cudaErrorCompatNotSupportedOnDevice, "forward compatibility was attempted on non supported HW"),
    LC_ERR(cudaErrorMpsConnectionFailed, "MPS client failed to connect to the MPS control daemon or the MPS server"),
    LC_ERR(cudaErrorMpsRpcFailure, "the remote procedural call between the MPS server and the MPS client failed"),
    LC_ERR(cudaErrorMpsServerNotReady, "MPS server is not ready to accept new MPS client requests"),
    LC_ERR(cudaErrorMpsMaxClientsReached, "the hardware resources required to create MPS client have been exhausted"),
    LC_ERR(cudaErrorMpsMaxConnectionsReached, "the hardware resources required to support device connections have been exhausted"),
    LC_ERR(cudaErrorMpsClientTerminated, "the MPS client has been terminated by the server"),
    LC_ERR(cudaErrorCdpNotSupported, "is using CUDA Dynamic Parallelism, but the current configuration, like MPS, does not support it"),
    LC_ERR(cudaErrorCdpVersionMismatch, "unsupported interaction between different versions of CUDA Dynamic Parallelism"),
    LC_ERR(cudaErrorStreamCaptureUnsupported, "operation not permitted when stream is capturing"),
    LC_ERR(cudaErrorStreamCaptureInvalidated, "operation failed due to a previous error during capture"),
    LC_ERR(cudaErrorStreamCaptureMerge, "operation would result in a merge of separate capture sequences"),
    LC_ERR(cudaErrorStreamCaptureUnmatched, "capture was not ended in the same stream as it began"),
    LC_ERR(cudaErrorStreamCaptureUnjoined, "capturing stream has unjoined work"),
    LC_ERR(cudaErrorStreamCaptureIsolation, "dependency created on uncaptured work in another stream"),
    LC_ERR(cudaErrorStreamCaptureImplicit, "operation would make the legacy stream depend on a capturing blocking stream"),
    LC_ERR(cudaErrorCapturedEvent, "operation not permitted on an event last recorded in a capturing stream"),
    LC_ERR(cudaErrorStreamCaptureWrongThread, "attempt to terminate a thread-local capture sequence from another thread"),
    LC_ERR(cudaErrorTimeout, "wait operation timed out"),
    LC_ERR(cudaErrorGraphExecUpdateFailure, "the graph update was not performed because it included changes which violated constraints specific to instantiated graph update"),
    LC_ERR(cudaErrorExternalDevice, "an async error has occured in external entity outside of CUDA"),
    LC_ERR(cudaErrorInvalidClusterSize, "a kernel launch error has occurred due to cluster misconfiguration"),
    LC_ERR(cudaErrorFunctionNotLoaded, "the function handle is not loaded when calling an API that requires a loaded function"),
    LC_ERR(cudaErrorInvalidResourceType, "one or more resources passed in are not valid resource types for the operation"),
    LC_ERR(cudaErrorInvalidResourceConfiguration, "one or more resources are insufficient or non-applicable for the operation"),
    LC_ERR(cudaErrorUnknown, "unknown error"),
};
#undef LC_ERR

const ErrorText* error_text(cudaError_t e) {
  for (const ErrorText& t : kErrors) {
    if (t.code == e) return &t;
  }
  return nullptr;
}

}  // namespace

void launch(const LaunchConfig& cfg, KernelEntry entry, std::shared_ptr<void> closure) {
  Device& d = dev();
  std::lock_guard<std::recursive_mutex> lock(d.mu);
  if (d.sticky != cudaSuccess) {
    record(d.sticky);
    return;
  }
  CUstream_st* capture = nullptr;
  cudaError_t e = route(d, cfg.stream, &capture);
  if (e == cudaSuccess) e = validate_launch(d, cfg);
  if (e != cudaSuccess) {
    if (capture) capture->invalidated = true;
    record(e);
    return;
  }
  if (capture) {
    Op op;
    op.kind = Op::Kind::Kernel;
    op.cfg = cfg;
    op.entry = entry;
    op.closure = std::move(closure);
    capture->captured.push_back(std::move(op));
    return;
  }
  record(launch_now(d, cfg, entry, closure.get()));
}

Stats stats() {
  Device& d = dev();
  std::lock_guard<std::recursive_mutex> lock(d.mu);
  return detail::stats();
}

void reset_stats() {
  Device& d = dev();
  std::lock_guard<std::recursive_mutex> lock(d.mu);
  detail::stats() = Stats{};
}

const char* last_fault_report() {
  Device& d = dev();
  std::lock_guard<std::recursive_mutex> lock(d.mu);
  return d.last_report;
}

size_t allocated_bytes() {
  Device& d = dev();
  std::lock_guard<std::recursive_mutex> lock(d.mu);
  return d.used;
}

}  // namespace lc_simt

using lc_simt::dev;
using lc_simt::Device;
using lc_simt::record;
using Lock = std::lock_guard<std::recursive_mutex>;

extern "C" {

// ---- errors -------------------------------------------------------------------------------------

cudaError_t cudaGetLastError(void) {
  Device& d = dev();
  Lock lock(d.mu);
  const cudaError_t e = lc_simt::t_last_error;
  lc_simt::t_last_error = cudaSuccess;
  return d.sticky != cudaSuccess ? d.sticky : e;
}

cudaError_t cudaPeekAtLastError(void) {
  Device& d = dev();
  Lock lock(d.mu);
  return d.sticky != cudaSuccess ? d.sticky : lc_simt::t_last_error;
}

const char* cudaGetErrorName(cudaError_t error) {
  const lc_simt::ErrorText* t = lc_simt::error_text(error);
  return t ? t->name : "unrecognized error code";
}

const char* cudaGetErrorString(cudaError_t error) {
  Device& d = dev();
  {
    Lock lock(d.mu);
    if (error == d.sticky && d.sticky_text) return d.sticky_text;
  }
  const lc_simt::ErrorText* t = lc_simt::error_text(error);
  return t ? t->text : "unrecognized error code";
}

// ---- device -------------------------------------------------------------------------------------

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return record(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : record(cudaErrorInvalidDevice); }

cudaError_t cudaGetDevice(int* device) {
  if (!device) return record(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* version) {
  if (!version) return record(cudaErrorInvalidValue);
  *version = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (!version) return record(cudaErrorInvalidValue);
  *version = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp* prop, int device) {
  if (!prop) return record(cudaErrorInvalidValue);
  if (device != 0) return record(cudaErrorInvalidDevice);
  Device& d = dev();
  Lock lock(d.mu);
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "SIMT emulator (CPU, sm_80 limits)");
  prop->totalGlobalMem = lc_simt::total_memory(d);
  prop->sharedMemPerBlock = lc_simt::kSmemDefault;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->memPitch = 2147483647;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->totalConstMem = 65536;
  prop->major = 8;
  prop->minor = 0;
  prop->textureAlignment = 512;
  prop->texturePitchAlignment = 32;
  prop->multiProcessorCount = d.sms;
  prop->canMapHostMemory = 1;
  prop->concurrentKernels = 1;
  prop->asyncEngineCount = 2;
  prop->unifiedAddressing = 1;
  prop->memoryBusWidth = 5120;
  prop->l2CacheSize = 40 * 1024 * 1024;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->sharedMemPerMultiprocessor = lc_simt::kSmemPerSm;
  prop->regsPerMultiprocessor = 65536;
  prop->computePreemptionSupported = 1;
  prop->cooperativeLaunch = 1;
  prop->sharedMemPerBlockOptin = lc_simt::kSmemOptin;
  prop->maxBlocksPerMultiProcessor = 32;
  prop->reservedSharedMemPerBlock = 1024;
  prop->hostRegisterSupported = 1;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, enum cudaDeviceAttr attr, int device) {
  if (!value) return record(cudaErrorInvalidValue);
  if (device != 0) return record(cudaErrorInvalidDevice);
  Device& d = dev();
  int v = 0;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: v = 1024; break;
    case cudaDevAttrMaxBlockDimX: v = 1024; break;
    case cudaDevAttrMaxBlockDimY: v = 1024; break;
    case cudaDevAttrMaxBlockDimZ: v = 64; break;
    case cudaDevAttrMaxGridDimX: v = 2147483647; break;
    case cudaDevAttrMaxGridDimY: v = 65535; break;
    case cudaDevAttrMaxGridDimZ: v = 65535; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: v = static_cast<int>(lc_simt::kSmemDefault); break;
    case cudaDevAttrTotalConstantMemory: v = 65536; break;
    case cudaDevAttrWarpSize: v = 32; break;
    case cudaDevAttrMaxRegistersPerBlock: v = 65536; break;
    case cudaDevAttrMultiProcessorCount: v = d.sms; break;
    case cudaDevAttrComputeCapabilityMajor: v = 8; break;
    case cudaDevAttrComputeCapabilityMinor: v = 0; break;
    case cudaDevAttrL2CacheSize: v = 40 * 1024 * 1024; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: v = 2048; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: v = static_cast<int>(lc_simt::kSmemPerSm); break;
    case cudaDevAttrMaxRegistersPerMultiprocessor: v = 65536; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: v = static_cast<int>(lc_simt::kSmemOptin); break;
    case cudaDevAttrMaxBlocksPerMultiprocessor: v = 32; break;
    case cudaDevAttrReservedSharedMemoryPerBlock: v = 1024; break;
    case cudaDevAttrGlobalMemoryBusWidth: v = 5120; break;
    case cudaDevAttrUnifiedAddressing: v = 1; break;
    case cudaDevAttrConcurrentKernels: v = 1; break;
    case cudaDevAttrAsyncEngineCount: v = 2; break;
    case cudaDevAttrCanMapHostMemory: v = 1; break;
    case cudaDevAttrCooperativeLaunch: v = 1; break;
    default: v = 0; break;
  }
  *value = v;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
  Device& d = dev();
  Lock lock(d.mu);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  return record(lc_simt::check_not_capturing(d));
}

cudaError_t cudaDeviceReset(void) {
  Device& d = dev();
  Lock lock(d.mu);
  for (auto& [addr, a] : d.allocs) std::free(reinterpret_cast<void*>(addr));
  d.allocs.clear();
  d.used = 0;
  d.max_dynamic_smem.clear();
  for (CUstream_st* s : d.streams) {
    s->capturing = false;
    s->invalidated = false;
    s->captured.clear();
  }
  d.sticky = cudaSuccess;
  d.sticky_text = nullptr;
  lc_simt::t_last_error = cudaSuccess;
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (!free_bytes || !total_bytes) return record(cudaErrorInvalidValue);
  Device& d = dev();
  Lock lock(d.mu);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  *total_bytes = lc_simt::total_memory(d);
  *free_bytes = *total_bytes > d.used ? *total_bytes - d.used : 0;
  return cudaSuccess;
}

// ---- functions ----------------------------------------------------------------------------------

cudaError_t cudaFuncSetAttribute(const void* func, enum cudaFuncAttribute attr, int value) {
  if (!func) return record(cudaErrorInvalidDeviceFunction);
  Device& d = dev();
  Lock lock(d.mu);
  switch (attr) {
    case cudaFuncAttributeMaxDynamicSharedMemorySize:
      if (value < 0 || static_cast<size_t>(value) > lc_simt::kSmemOptin) return record(cudaErrorInvalidValue);
      d.max_dynamic_smem[func] = value;
      return cudaSuccess;
    case cudaFuncAttributePreferredSharedMemoryCarveout:
      if (value < -1 || value > 100) return record(cudaErrorInvalidValue);
      return cudaSuccess;
    default:
      return cudaSuccess;
  }
}

cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes* attr, const void* func) {
  if (!attr) return record(cudaErrorInvalidValue);
  if (!func) return record(cudaErrorInvalidDeviceFunction);
  Device& d = dev();
  Lock lock(d.mu);
  std::memset(attr, 0, sizeof *attr);
  auto it = d.max_dynamic_smem.find(func);
  attr->maxThreadsPerBlock = 1024;
  attr->numRegs = 32;
  attr->ptxVersion = 80;
  attr->binaryVersion = 80;
  attr->maxDynamicSharedSizeBytes = it == d.max_dynamic_smem.end() ? static_cast<int>(lc_simt::kSmemDefault) : it->second;
  return cudaSuccess;
}

cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* num_blocks, const void* func, int block_size,
                                                          size_t dynamic_smem) {
  if (!num_blocks || block_size <= 0 || block_size > 1024) return record(cudaErrorInvalidValue);
  if (!func) return record(cudaErrorInvalidDeviceFunction);
  const int warps = (block_size + 31) / 32;
  int n = 2048 / (warps * 32);
  if (n > 32) n = 32;
  if (dynamic_smem > 0) {
    const int by_smem = static_cast<int>(lc_simt::kSmemPerSm / (dynamic_smem + 1024));
    if (by_smem < n) n = by_smem;
  }
  *num_blocks = n;
  return cudaSuccess;
}

// ---- memory -------------------------------------------------------------------------------------

static cudaError_t simt_alloc(void** ptr, size_t size, bool device) {
  if (!ptr) return record(cudaErrorInvalidValue);
  Device& d = dev();
  Lock lock(d.mu);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  if (device) {
    if (cudaError_t e = lc_simt::check_not_capturing(d); e != cudaSuccess) return record(e);
  }
  *ptr = nullptr;
  if (size == 0) return cudaSuccess;
  const size_t rounded = (size + lc_simt::kAlign - 1) / lc_simt::kAlign * lc_simt::kAlign;
  if (rounded < size) return record(cudaErrorMemoryAllocation);
  if (device && d.limit && (rounded > d.limit || d.used > d.limit - rounded)) return record(cudaErrorMemoryAllocation);
  void* p = std::aligned_alloc(lc_simt::kAlign, rounded);
  if (!p) return record(cudaErrorMemoryAllocation);
  // Uninitialized device memory reads as all-ones bits (NaN for floats, -1 for ints).
  if (device && d.poison) std::memset(p, 0xff, rounded);
  d.allocs[reinterpret_cast<uintptr_t>(p)] = lc_simt::Alloc{size, device};
  if (device) d.used += rounded;
  *ptr = p;
  return cudaSuccess;
}

static cudaError_t simt_free(void* ptr, bool device) {
  if (!ptr) return cudaSuccess;
  Device& d = dev();
  Lock lock(d.mu);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  if (device) {
    if (cudaError_t e = lc_simt::check_not_capturing(d); e != cudaSuccess) return record(e);
  }
  auto it = d.allocs.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == d.allocs.end() || it->second.device != device) return record(cudaErrorInvalidValue);
  if (device) d.used -= (it->second.size + lc_simt::kAlign - 1) / lc_simt::kAlign * lc_simt::kAlign;
  d.allocs.erase(it);
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** devPtr, size_t size) { return simt_alloc(devPtr, size, true); }
cudaError_t cudaFree(void* devPtr) { return simt_free(devPtr, true); }
cudaError_t cudaMallocHost(void** ptr, size_t size) { return simt_alloc(ptr, size, false); }
cudaError_t cudaHostAlloc(void** pHost, size_t size, unsigned int) { return simt_alloc(pHost, size, false); }
cudaError_t cudaFreeHost(void* ptr) { return simt_free(ptr, false); }
cudaError_t cudaHostRegister(void* ptr, size_t size, unsigned int) {
  return ptr && size ? cudaSuccess : record(cudaErrorInvalidValue);
}
cudaError_t cudaHostUnregister(void* ptr) { return ptr ? cudaSuccess : record(cudaErrorInvalidValue); }

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes* attributes, const void* ptr) {
  if (!attributes) return record(cudaErrorInvalidValue);
  Device& d = dev();
  Lock lock(d.mu);
  std::memset(attributes, 0, sizeof *attributes);
  const lc_simt::Alloc* a = lc_simt::find_alloc(d, ptr, 1);
  attributes->device = 0;
  if (!a) {
    attributes->type = cudaMemoryTypeUnregistered;
    attributes->hostPointer = const_cast<void*>(ptr);
  } else if (a->device) {
    attributes->type = cudaMemoryTypeDevice;
    attributes->devicePointer = const_cast<void*>(ptr);
  } else {
    attributes->type = cudaMemoryTypeHost;
    attributes->hostPointer = const_cast<void*>(ptr);
    attributes->devicePointer = const_cast<void*>(ptr);
  }
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind) {
  Device& d = dev();
  Lock lock(d.mu);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  if (cudaError_t e = lc_simt::check_not_capturing(d); e != cudaSuccess) return record(e);
  return record(lc_simt::memcpy_now(d, dst, src, count, kind));
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind, cudaStream_t stream) {
  Device& d = dev();
  Lock lock(d.mu);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  CUstream_st* capture = nullptr;
  if (cudaError_t e = lc_simt::route(d, stream, &capture); e != cudaSuccess) return record(e);
  if (capture) {
    lc_simt::Op op;
    op.kind = lc_simt::Op::Kind::Memcpy;
    op.dst = dst;
    op.src = src;
    op.bytes = count;
    op.copy_kind = kind;
    capture->captured.push_back(op);
    return cudaSuccess;
  }
  return record(lc_simt::memcpy_now(d, dst, src, count, kind));
}

cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                         enum cudaMemcpyKind kind) {
  if (width > dpitch || width > spitch) return record(cudaErrorInvalidPitchValue);
  Device& d = dev();
  Lock lock(d.mu);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  if (cudaError_t e = lc_simt::check_not_capturing(d); e != cudaSuccess) return record(e);
  for (size_t r = 0; r < height; r++) {
    cudaError_t e = lc_simt::memcpy_now(d, static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch,
                                        width, kind);
    if (e != cudaSuccess) return record(e);
  }
  return cudaSuccess;
}

cudaError_t cudaMemset(void* devPtr, int value, size_t count) {
  Device& d = dev();
  Lock lock(d.mu);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  if (cudaError_t e = lc_simt::check_not_capturing(d); e != cudaSuccess) return record(e);
  return record(lc_simt::memset_now(d, devPtr, value, count));
}

cudaError_t cudaMemsetAsync(void* devPtr, int value, size_t count, cudaStream_t stream) {
  Device& d = dev();
  Lock lock(d.mu);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  CUstream_st* capture = nullptr;
  if (cudaError_t e = lc_simt::route(d, stream, &capture); e != cudaSuccess) return record(e);
  if (capture) {
    lc_simt::Op op;
    op.kind = lc_simt::Op::Kind::Memset;
    op.dst = devPtr;
    op.value = value;
    op.bytes = count;
    capture->captured.push_back(op);
    return cudaSuccess;
  }
  return record(lc_simt::memset_now(d, devPtr, value, count));
}

cudaError_t cudaMemcpyToSymbol(const void* symbol, const void* src, size_t count, size_t offset,
                               enum cudaMemcpyKind kind) {
  if (!symbol || (count && !src)) return record(cudaErrorInvalidValue);
  if (kind != cudaMemcpyHostToDevice && kind != cudaMemcpyDeviceToDevice && kind != cudaMemcpyDefault) {
    return record(cudaErrorInvalidMemcpyDirection);
  }
  Device& d = dev();
  Lock lock(d.mu);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  if (count) std::memcpy(const_cast<char*>(static_cast<const char*>(symbol)) + offset, src, count);
  return cudaSuccess;
}

cudaError_t cudaMemcpyFromSymbol(void* dst, const void* symbol, size_t count, size_t offset, enum cudaMemcpyKind kind) {
  if (!symbol || (count && !dst)) return record(cudaErrorInvalidValue);
  if (kind != cudaMemcpyDeviceToHost && kind != cudaMemcpyDeviceToDevice && kind != cudaMemcpyDefault) {
    return record(cudaErrorInvalidMemcpyDirection);
  }
  Device& d = dev();
  Lock lock(d.mu);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  if (count) std::memcpy(dst, static_cast<const char*>(symbol) + offset, count);
  return cudaSuccess;
}

// ---- streams and events -------------------------------------------------------------------------

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* pStream, unsigned int flags) {
  if (!pStream) return record(cudaErrorInvalidValue);
  Device& d = dev();
  Lock lock(d.mu);
  CUstream_st* s = new CUstream_st;
  s->flags = flags;
  d.streams.insert(s);
  *pStream = s;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* pStream) { return cudaStreamCreateWithFlags(pStream, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  Device& d = dev();
  Lock lock(d.mu);
  if (!d.streams.erase(stream)) return record(cudaErrorInvalidResourceHandle);
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  Device& d = dev();
  Lock lock(d.mu);
  CUstream_st* s = nullptr;
  if (!lc_simt::resolve(d, stream, &s)) return record(cudaErrorInvalidResourceHandle);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  if (s && s->capturing) {
    s->invalidated = true;
    return record(cudaErrorStreamCaptureUnsupported);
  }
  if (!s) return record(lc_simt::check_not_capturing(d));
  return cudaSuccess;
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  Device& d = dev();
  Lock lock(d.mu);
  CUstream_st* s = nullptr;
  if (!lc_simt::resolve(d, stream, &s)) return record(cudaErrorInvalidResourceHandle);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  Device& d = dev();
  Lock lock(d.mu);
  CUstream_st* s = nullptr;
  if (!lc_simt::resolve(d, stream, &s) || !d.events.count(event)) return record(cudaErrorInvalidResourceHandle);
  return cudaSuccess;  // every stream is synchronous: already satisfied
}

cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void* userData) {
  if (!fn) return record(cudaErrorInvalidValue);
  Device& d = dev();
  Lock lock(d.mu);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  CUstream_st* capture = nullptr;
  if (cudaError_t e = lc_simt::route(d, stream, &capture); e != cudaSuccess) return record(e);
  if (capture) {
    lc_simt::Op op;
    op.kind = lc_simt::Op::Kind::HostFn;
    op.fn = fn;
    op.user = userData;
    capture->captured.push_back(op);
    return cudaSuccess;
  }
  fn(userData);
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (!event) return record(cudaErrorInvalidValue);
  Device& d = dev();
  Lock lock(d.mu);
  CUevent_st* e = new CUevent_st;
  e->flags = flags;
  d.events.insert(e);
  *event = e;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  Device& d = dev();
  Lock lock(d.mu);
  if (!d.events.erase(event)) return record(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  Device& d = dev();
  Lock lock(d.mu);
  CUstream_st* s = nullptr;
  if (!d.events.count(event) || !lc_simt::resolve(d, stream, &s)) return record(cudaErrorInvalidResourceHandle);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  if (s && s->capturing) return cudaSuccess;  // an ordering point inside the capture: nothing to time
  event->recorded = true;
  event->time = std::chrono::steady_clock::now();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  Device& d = dev();
  Lock lock(d.mu);
  if (!d.events.count(event)) return record(cudaErrorInvalidResourceHandle);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t event) { return cudaEventSynchronize(event); }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms) return record(cudaErrorInvalidValue);
  Device& d = dev();
  Lock lock(d.mu);
  if (!d.events.count(start) || !d.events.count(end)) return record(cudaErrorInvalidResourceHandle);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  if ((start->flags | end->flags) & cudaEventDisableTiming) return record(cudaErrorInvalidResourceHandle);
  if (!start->recorded || !end->recorded) return record(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}

// ---- stream capture and graphs ------------------------------------------------------------------

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode) {
  Device& d = dev();
  Lock lock(d.mu);
  if (lc_simt::is_default_stream(stream)) return record(cudaErrorStreamCaptureUnsupported);
  CUstream_st* s = nullptr;
  if (!lc_simt::resolve(d, stream, &s)) return record(cudaErrorInvalidResourceHandle);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  if (s->capturing) return record(cudaErrorIllegalState);
  s->capturing = true;
  s->invalidated = false;
  s->mode = mode;
  s->captured.clear();
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* pGraph) {
  if (!pGraph) return record(cudaErrorInvalidValue);
  Device& d = dev();
  Lock lock(d.mu);
  CUstream_st* s = nullptr;
  if (!lc_simt::resolve(d, stream, &s)) return record(cudaErrorInvalidResourceHandle);
  if (!s || !s->capturing) return record(cudaErrorIllegalState);
  s->capturing = false;
  *pGraph = nullptr;
  if (s->invalidated) {
    s->invalidated = false;
    s->captured.clear();
    return record(cudaErrorStreamCaptureInvalidated);
  }
  CUgraph_st* g = new CUgraph_st;
  g->ops = std::move(s->captured);
  s->captured.clear();
  d.graphs.insert(g);
  *pGraph = g;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus* pCaptureStatus) {
  if (!pCaptureStatus) return record(cudaErrorInvalidValue);
  Device& d = dev();
  Lock lock(d.mu);
  CUstream_st* s = nullptr;
  if (!lc_simt::resolve(d, stream, &s)) return record(cudaErrorInvalidResourceHandle);
  *pCaptureStatus = !s || !s->capturing ? cudaStreamCaptureStatusNone
                    : s->invalidated    ? cudaStreamCaptureStatusInvalidated
                                        : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes, size_t* numNodes) {
  if (!numNodes) return record(cudaErrorInvalidValue);
  Device& d = dev();
  Lock lock(d.mu);
  if (!d.graphs.count(graph)) return record(cudaErrorInvalidResourceHandle);
  if (nodes) return record(cudaErrorNotSupported);  // the emulator counts nodes; it has no node handles
  *numNodes = graph->ops.size();
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* pGraphExec, cudaGraph_t graph, unsigned long long) {
  if (!pGraphExec) return record(cudaErrorInvalidValue);
  Device& d = dev();
  Lock lock(d.mu);
  if (!d.graphs.count(graph)) return record(cudaErrorInvalidResourceHandle);
  CUgraphExec_st* e = new CUgraphExec_st;
  e->ops = graph->ops;
  d.execs.insert(e);
  *pGraphExec = e;
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t graphExec, cudaStream_t stream) {
  Device& d = dev();
  Lock lock(d.mu);
  if (!d.execs.count(graphExec)) return record(cudaErrorInvalidResourceHandle);
  if (d.sticky != cudaSuccess) return record(d.sticky);
  CUstream_st* capture = nullptr;
  if (cudaError_t e = lc_simt::route(d, stream, &capture); e != cudaSuccess) return record(e);
  if (capture) {  // a graph launched into a capture becomes part of it
    for (const lc_simt::Op& op : graphExec->ops) capture->captured.push_back(op);
    return cudaSuccess;
  }
  for (const lc_simt::Op& op : graphExec->ops) {
    cudaError_t e = lc_simt::run_op(d, op, stream);
    if (e != cudaSuccess) return record(e);
  }
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t graphExec) {
  Device& d = dev();
  Lock lock(d.mu);
  if (!d.execs.erase(graphExec)) return record(cudaErrorInvalidResourceHandle);
  delete graphExec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  Device& d = dev();
  Lock lock(d.mu);
  if (!d.graphs.erase(graph)) return record(cudaErrorInvalidResourceHandle);
  delete graph;
  return cudaSuccess;
}

}  // extern "C"
