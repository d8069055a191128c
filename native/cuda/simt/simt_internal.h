// Between the emulated runtime (cuda_runtime_simt.cc) and the scheduler (scheduler.cc). Not for
// kernels or backends.
#pragma once

#include <string>

#include "cuda_runtime_simt.h"

namespace lc_simt {
namespace detail {

// Runs every block of a validated launch on the calling OS thread (the caller holds the device
// lock). Returns cudaSuccess, or the fault (deadlock, misuse of a collective, trap, misaligned
// access) with *report saying where and what every thread was doing.
cudaError_t run_kernel(const LaunchConfig& cfg, KernelEntry entry, void* closure, std::string* report);

Stats& stats();

}  // namespace detail
}  // namespace lc_simt
