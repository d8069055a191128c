// The CPU backend: weights in aligned host memory, steps run op by op through one kernel
// tier (kernels.h) over the engine's thread pool.
#pragma once

#include <memory>
#include <string>

#include "../core/backend.h"
#include "kernels.h"

namespace lc {

// tier: "auto", "reference", "generic", "avx2", "avx512"; threads: 0 = all online CPUs.
Status create_cpu_backend(const std::string& tier, int threads, std::unique_ptr<Backend>* out);

}  // namespace lc
