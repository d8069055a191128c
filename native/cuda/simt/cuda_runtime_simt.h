// SIMT emulator, host side: the CUDA runtime API on the CPU.
//
// The declarations are the real ones: this header includes the toolkit's <cuda_runtime.h> (a
// host header g++ compiles), and cuda_runtime_simt.cc defines the subset of those functions a
// backend needs (memory, copies, streams, events, errors, device queries, function attributes,
// stream capture and graphs). Backend code therefore compiles unchanged against either runtime;
// a function outside the subset is an "undefined reference" at link time, never a silent stub.
//
// What it models (see README.md): one device, "SIMT emulator", reporting sm_80 limits; device
// memory is host memory (256-byte aligned, filled with 0xFF so reads of unwritten memory show up
// as NaN / -1); every stream is synchronous; kernel faults (deadlock, misuse of a collective,
// __trap, misaligned 16-byte access) are sticky, as on a GPU, until cudaDeviceReset().
// Environment: LLAMA_CUDA_SIMT_MEMORY=<bytes> caps device memory (cudaErrorMemoryAllocation
// beyond it); LLAMA_CUDA_SIMT_POISON=0 leaves new allocations unfilled;
// LLAMA_CUDA_SIMT_STACK_KB sets each emulated thread's stack (default 256).
//
// Thread safety: any OS thread may call in; launches and copies are serialized by one lock.
// No global constructors: all state is created on first use, so the library can live in a
// dlopen'ed addon.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

namespace lc_simt {

struct LaunchConfig {
  const char* name;  // the kernel expression as written at the launch site
  const void* func;  // key for cudaFuncSetAttribute
  dim3 grid;
  dim3 block;
  size_t smem;  // dynamic shared memory bytes
  cudaStream_t stream;
};

using KernelEntry = void (*)(void* closure);

// Launches a kernel: runs it now, or records it when `stream` is being captured. The closure
// (kernel pointer + argument copies) is shared with any graph that recorded it. Errors go to
// cudaGetLastError(), as for a real launch.
void launch(const LaunchConfig& cfg, KernelEntry entry, std::shared_ptr<void> closure);

// What LC_LAUNCH expands to in the emulator: the arguments are converted to the kernel's
// parameter types once, then every emulated thread calls the kernel with its own copy.
template <class... P, class... A>
inline void launch_kernel(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem,
                          cudaStream_t stream, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "LC_LAUNCH: wrong number of kernel arguments");
  using Args = std::tuple<typename std::decay<P>::type...>;
  struct Closure {
    void (*kernel)(P...);
    Args args;
    static void run(void* self) {
      Closure* c = static_cast<Closure*>(self);
      std::apply(c->kernel, c->args);
    }
  };
  auto closure = std::make_shared<Closure>(Closure{kernel, Args(std::forward<A>(args)...)});
  launch(LaunchConfig{name, reinterpret_cast<const void*>(kernel), grid, block, smem, stream}, &Closure::run,
         std::move(closure));
}

// Counters since the last reset_stats(), for the speed report (simt_check --bench).
struct Stats {
  uint64_t launches = 0;
  uint64_t blocks = 0;
  uint64_t threads = 0;
  uint64_t switches = 0;  // fiber resumptions
  uint64_t barriers = 0;  // completed __syncthreads
  uint64_t warp_ops = 0;  // completed warp collectives (shuffles, votes, mma, ldmatrix)
};
Stats stats();
void reset_stats();

// The full report of the last kernel fault (deadlock, misuse, trap), or "" when none. The same
// text is what cudaGetErrorString() returns for the sticky error while it is set.
const char* last_fault_report();

// Device bytes currently allocated (for leak checks in tests).
size_t allocated_bytes();

}  // namespace lc_simt

// The C++ overloads that the toolkit's cuda_runtime.h declares only under nvcc (kernel and symbol
// arguments by name instead of `const void*`), with the same signatures, so backend code such as
// cudaFuncSetAttribute(my_kernel<T>, ...) compiles unchanged in the emulator.
template <class T>
static inline cudaError_t cudaFuncSetAttribute(T* entry, enum cudaFuncAttribute attr, int value) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(entry), attr, value);
}
template <class T>
static inline cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes* attr, T* entry) {
  return ::cudaFuncGetAttributes(attr, reinterpret_cast<const void*>(entry));
}
template <class T>
static inline cudaError_t cudaMemcpyToSymbol(const T& symbol, const void* src, size_t count, size_t offset = 0,
                                             enum cudaMemcpyKind kind = cudaMemcpyHostToDevice) {
  return ::cudaMemcpyToSymbol(static_cast<const void*>(&symbol), src, count, offset, kind);
}
template <class T>
static inline cudaError_t cudaMemcpyFromSymbol(void* dst, const T& symbol, size_t count, size_t offset = 0,
                                               enum cudaMemcpyKind kind = cudaMemcpyDeviceToHost) {
  return ::cudaMemcpyFromSymbol(dst, static_cast<const void*>(&symbol), count, offset, kind);
}
