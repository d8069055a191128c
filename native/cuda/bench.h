// Native timing for the GPU benchmarks (bench/gpu/run.mjs): the two ceilings every kernel number is
// held against, and one op launched through ops.cuh, each timed with CUDA events (llm.c's
// benchmark_kernel: warm-up, then repeats, the L2 cache flushed before each timed launch). Plain
// C++ header: the binding includes it without the CUDA headers. Compiled in the 'cuda' and 'simt'
// builds (in the emulator the numbers mean nothing; the tests only run tiny sizes through it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/op_shape.h"
#include "core/status.h"

namespace lc {

struct BenchResult {
  std::vector<double> ms;  // one per timed repeat
  double bytes = 0;        // bytes the timed work moves (reads + writes, as counted for its ceiling)
  double flops = 0;        // floating-point operations of the timed work (0 when not compute-bound)
  std::string kernel;      // what ran
};

// Device-to-device copy of `bytes` by a 16-byte grid-stride kernel (the bandwidth ceiling): bytes
// moved = 2 * bytes (read + write).
Status cuda_bench_copy(int device, size_t bytes, int repeats, BenchResult* out);

// Tensor-core peak: every warp runs `iterations` x 8 independent mma.sync.m16n8k16 bf16 (f32
// accumulate) on register fragments, blocks_per_sm x SMs blocks of 4 warps: flops = warps x
// iterations x 8 x 4096.
Status cuda_bench_mma(int device, int iterations, int blocks_per_sm, int repeats, BenchResult* out);

// One op of ops.cuh on random data of the given sizes:
//   matmul     out[n][rows] = x[n][cols] . W^T, W of `dtype` (int4: `group`)
//   attention  n query rows at positions ctx - n .. ctx - 1 over a KV cache of ctx rows in kv_dtype
//   rmsnorm    n rows of cols;  swiglu: n x cols values
struct OpBenchSpec : OpShape {
  OpBenchSpec() { dtype = DType::BF16; }
  bool flush_l2 = true;
  int repeats = 20;
};
Status cuda_bench_op(int device, const OpBenchSpec& spec, BenchResult* out);

}  // namespace lc
