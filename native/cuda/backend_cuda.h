// The CUDA backend (core/backend.h on an NVIDIA GPU, or on the SIMT emulator in the 'simt' build):
// weights in device memory, sessions that run the graph through the kernels of ops.cuh on one
// stream, decode steps captured once as a CUDA graph and replayed. Plain C++ header: core/engine.cc
// includes it without the CUDA headers.
#pragma once

#include <memory>

#include "core/backend.h"

namespace lc {

// A backend on CUDA device `device` (0 = the first). Fails with ERR_CUDA when the device cannot be
// used (no driver, no such device, a context left unusable by an earlier fault).
Status create_cuda_backend(int device, std::unique_ptr<Backend>* out);

}  // namespace lc
