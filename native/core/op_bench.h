// One CPU op on prepared buffers, run again and again: what the microbenchmarks time
// (lib/bench/). The op is called through the same kernel table (cpu/kernels.h) and thread pool
// type the CPU backend uses for a model step, on buffers allocated and filled once, so a timed
// repeat is the kernel's work and nothing else (no graph walk, no input copies, no N-API).
//
//   op          buffers (f32 rows unless said)                         sizes used
//   embed       out[n][cols] = table[tok[i]]  (table: weight [rows][cols], any dtype)   rows, cols, n
//   rmsnorm     out[n][width] = rmsnorm(a) * w                         width, n
//   matmul      out[n][rows] = a[n][cols] . W^T  (W: dtype, group)     rows, cols, n
//   rope        a[n][n_heads*head_dim] rotated in place, positions ctx-n .. ctx-1 (interleaved)
//   kv_append   cache rows ctx-n .. ctx-1 = a, b  ([n][n_kv_heads*head_dim], kv_dtype)
//   attention   out = causal GQA attention of q[n][n_heads*head_dim] at positions ctx-n ..
//               ctx-1 over a cache of ctx rows (kv_dtype)
//   swiglu/add  out[n][width] = f(a, b)
//   last_row    out[width] = a[n-1][:]   (what the backend does: one row copied)
//
// Buffers are filled from a seeded hash (f32 in [-1, 1), small scales for quantized weights),
// or from data the caller gives (a, b as f32; the weight as a source encoding converted by the
// weight loader), so a test can hold one run against its own reference.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aligned_buffer.h"
#include "op_shape.h"
#include "status.h"
#include "tensor.h"
#include "thread_pool.h"
#include "weight_loader.h"

namespace lc {

struct CpuKernels;

struct CpuOpBenchSpec : OpShape {
  std::string tier = "auto";
  int threads = 0;  // 0 = every online CPU
  uint32_t seed = 1;
  // Cold reads: the weight (matmul) or KV cache (attention) is replicated until the copies
  // take at least this many bytes, and each run reads the next copy, so a run finds its
  // operand in memory, not in the cache the previous run warmed (a model reads each weight
  // and each layer's cache once per step). 0: one copy.
  uint64_t cold_bytes = 0;
  // Optional caller data (kept alive by the caller during create()).
  const float* a = nullptr;
  size_t a_count = 0;
  const float* b = nullptr;
  size_t b_count = 0;
  bool has_weight_source = false;
  WeightSource weight_source;
};

class CpuOpBench {
 public:
  // Validates the spec, allocates and fills every buffer.
  static Status create(const CpuOpBenchSpec& spec, std::unique_ptr<CpuOpBench>* out);

  // Runs the op `iterations` times; returns the elapsed seconds of all of them.
  double run(int64_t iterations);
  // The op's f32 output ([rows][width] as described above; rope: a; kv_append: nothing).
  const float* output() const { return out_; }
  size_t output_count() const { return out_count_; }
  std::string kernel() const;
  int threads() const { return pool_->size(); }
  // Copies the runs rotate over (1 without cold_bytes).
  int copies() const { return copies_; }

 private:
  CpuOpBench() = default;
  Status init(const CpuOpBenchSpec& spec);
  void run_once();

  CpuOpBenchSpec spec_;
  const CpuKernels* kernels_ = nullptr;
  std::unique_ptr<ThreadPool> pool_;
  AlignedBuffer a_mem_, b_mem_, out_mem_, weight_mem_, norm_mem_, table_mem_, k_mem_, v_mem_, scratch_mem_;
  std::vector<int32_t> tokens_;
  Weight weight_;  // copy 0; copy c lives copy_stride_ bytes further
  KvLayer kv_;
  int copies_ = 1;
  int next_copy_ = 0;
  size_t copy_stride_ = 0;  // weight bytes (matmul) or one cache's bytes (attention), 64-aligned
  float* a_ = nullptr;
  float* b_ = nullptr;
  float* out_ = nullptr;
  size_t out_count_ = 0;
  float* cos_sin_ = nullptr;
  uint8_t* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
};

}  // namespace lc
