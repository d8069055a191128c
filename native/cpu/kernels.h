// The CPU op set: one table of function pointers per implementation tier.
//
//   reference  scalar loops, single thread, llama2.c clarity: the oracle (native/cpu/ops/)
//   generic    portable C++ (compiler-vectorized), multithreaded: the fast path off x86
//   avx2       AVX2 + FMA + F16C, multithreaded (native/cpu/simd/*_avx2.cc)
//   avx512     AVX-512 F/BW/VL/DQ + VNNI, multithreaded (native/cpu/simd/*_avx512.cc)
//
// Conventions for every op: destination first, then inputs, then sizes. Activations are
// f32, row-major, one row per token: x[n][width]. A weight row is one output feature.
// Every fast tier is tested against the reference and against a float64 JS reference
// (test/ops/). All sizes are validated by the graph (core/graph.cc) before a kernel runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "../core/tensor.h"
#include "../core/thread_pool.h"

namespace lc {

enum class RopePairing : int32_t {
  Interleaved = 0,  // rotate (x[2i], x[2i+1]): Meta, llama2.c, GGUF
  Half = 1,         // rotate (x[i], x[i + rope_dim/2]): Hugging Face
};

// Scratch the executor allocates once per session and hands to every op.
struct CpuScratch {
  uint8_t* data = nullptr;
  size_t nbytes = 0;
};

// Largest sizes a session will ever pass, for sizing scratch.
struct CpuScratchShape {
  int64_t max_rows = 1;      // tokens per step
  int64_t max_cols = 1;      // widest matmul input (cols of any weight)
  int64_t max_seq_len = 1;   // KV capacity
  int64_t max_heads = 1;     // most query heads of any attention node
  int n_threads = 1;
};

struct CpuContext {
  ThreadPool* pool = nullptr;
  CpuScratch scratch;
};

struct CpuKernels {
  const char* name;

  // Bytes of scratch this tier needs at most for the given shape.
  size_t (*scratch_bytes)(const CpuScratchShape& shape);

  // out[i][:] = row tokens[i] of table, dequantized (table is [vocab][dim], any dtype).
  void (*embed)(const CpuContext& ctx, float* out, const Weight& table, const int32_t* tokens, int64_t n);

  // out[i][:] = x[i][:] / sqrt(mean(x[i]^2) + eps) * w, for n rows of dim.
  void (*rmsnorm)(const CpuContext& ctx, float* out, const float* x, const float* w, int64_t n, int64_t dim, float eps);

  // out[i][j] = dot(x[i][:], row j of w): x is [n][w.cols], out is [n][w.rows]. out and x never alias.
  void (*matmul)(const CpuContext& ctx, float* out, const float* x, const Weight& w, int64_t n);

  // In place on x[n][n_heads * head_dim]: rotate the first rope_dim dims of every head by
  // the angles of row i's position. cos_sin is [n][rope_dim / 2][2] (cos, sin), built by the
  // executor from the positions, base theta and scaling.
  void (*rope)(const CpuContext& ctx, float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t rope_dim,
               RopePairing pairing, const float* cos_sin);

  // Store k[n][kv_dim] and v[n][kv_dim] at cache rows pos .. pos + n - 1.
  void (*kv_append)(const CpuContext& ctx, const KvLayer& cache, const float* k, const float* v, int64_t n, int64_t pos);

  // Causal attention with grouped-query heads. Query row i (position pos + i) attends to cache
  // rows 0 .. pos + i. q and out are [n][n_heads * head_dim]; query head h reads KV head
  // h / (n_heads / n_kv_heads). Scores are scaled by 1/sqrt(head_dim), softmax in f32.
  void (*attention)(const CpuContext& ctx, float* out, const float* q, const KvLayer& cache, int64_t n, int64_t pos,
                    int64_t n_heads, int64_t n_kv_heads, int64_t head_dim);

  // out = silu(gate) * up, elementwise over count values; silu(g) = g / (1 + exp(-g)).
  void (*swiglu)(const CpuContext& ctx, float* out, const float* gate, const float* up, int64_t count);

  // out = a + b, elementwise over count values (out may alias a or b).
  void (*add)(const CpuContext& ctx, float* out, const float* a, const float* b, int64_t count);
};

const CpuKernels& cpu_kernels_reference();
const CpuKernels& cpu_kernels_generic();
// nullptr when this build or this CPU lacks the instructions.
const CpuKernels* cpu_kernels_avx2();
const CpuKernels* cpu_kernels_avx512();

// Picks a tier by name ("auto", "reference", "generic", "avx2", "avx512"). On failure
// returns nullptr and says why in *why.
const CpuKernels* cpu_kernels_select(const std::string& name, std::string* why);

}  // namespace lc
