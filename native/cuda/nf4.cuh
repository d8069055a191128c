// NF4 (QLoRA 4-bit NormalFloat) on the device: the 16 table values of core/nf4.h. Kernels copy
// them once per block into shared memory (a lookup by a 4-bit code is then one conflict-free
// shared load: 16 entries in 16 banks, equal codes broadcast) instead of an affine map.
#pragma once

#include "core/nf4.h"

namespace lc::cuda {

// Table value i (0..15); a local array: call it once per thread to fill a shared table.
__device__ __forceinline__ float nf4_table_value(int i) {
  const float t[16] = {LC_NF4_VALUES};
  return t[i & 15];
}

}  // namespace lc::cuda
