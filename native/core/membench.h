// Memory bandwidth of this machine, measured on the spot: the ceiling that memory-bound work
// (decode, which reads every weight once per token) is held against in bench/.
#pragma once

#include <cstddef>

namespace lc {

struct MemoryBandwidth {
  double read_gbps = 0;  // streaming reads (sum of 64-bit words), all threads
  double copy_gbps = 0;  // memcpy, counted as bytes read + bytes written, all threads
  size_t bytes = 0;
  int threads = 0;
};

// Best of `repeats` passes over buffers of `bytes` (use several times the last-level cache).
// Returns false when the buffers cannot be allocated.
bool measure_memory_bandwidth(size_t bytes, int threads, int repeats, MemoryBandwidth* out);

}  // namespace lc
