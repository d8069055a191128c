// The CUDA op set: one host launcher per op, the contract between the kernel files
// (native/cuda/<op>.cu) and the CUDA backend (backend_cuda.cu). Each launcher has the same
// meaning and argument order as its CPU twin in native/cpu/kernels.h (destination first, then
// inputs, then sizes, then the stream), checks what it must, launches, and returns a Status
// (CUDA_TRY(cudaGetLastError()) after every launch). Kernels never throw or touch N-API.
//
// Memory: every pointer here is device memory. Activations are f32, row-major, one row per
// token: x[n][width]. Weights use the layouts of native/core/dtype.h (F32/F16/BF16 row-major,
// Q8_0 planar, INT4 group-affine planar) with Weight::data pointing at device memory.
//
// Graph replay: a decode step (n = 1) is captured once as a CUDA graph and replayed, so
// nothing a kernel needs may change between replays except through device memory. Positions
// therefore come as `pos`, a device pointer to one int32 (the position of the step's first row;
// row i is at pos[0] + i), and token ids as a device array. Grid sizes depend only on sizes fixed
// for the session (n, capacity), never on the position.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common.cuh"
#include "core/status.h"
#include "core/tensor.h"
#include "cpu/kernels.h"  // RopePairing

namespace lc::cuda {

// Scratch device memory a session allocates once (sizes from the *_workspace_bytes functions).
struct Workspace {
  void* data = nullptr;
  size_t bytes = 0;
};

// out[i][:] = row tokens[i] of table, dequantized to f32 (any weight dtype). tokens: device [n].
Status embed_cuda(float* out, const Weight& table, const int32_t* tokens, int64_t n, cudaStream_t stream);

// out[i][:] = x[i][:] / sqrt(mean(x[i]^2) + eps) * w;  x, out [n][dim], w [dim] (f32).
Status rmsnorm_cuda(float* out, const float* x, const float* w, int64_t n, int64_t dim, float eps, cudaStream_t stream);

// out[n][w.rows] = x[n][w.cols] . W^T for every weight dtype. Small n (decode) runs matrix-vector
// kernels (16-byte weight loads, dequantization in registers, split-K when rows are few); large n
// (prefill) runs the tensor-core GEMM (mma.sync bf16, int4/int8 dequantized in the main loop).
size_t matmul_workspace_bytes(int64_t max_n, int64_t max_cols, int64_t max_rows);
Status matmul_cuda(float* out, const float* x, const Weight& w, int64_t n, Workspace ws, cudaStream_t stream);

// In place on x[n][n_heads * head_dim]: rotate the first rope_dim dims of every head of row i by
// the angles of position pos[0] + i. cos_sin: device table [capacity][rope_dim / 2][2] (cos, sin)
// built once per session by the backend (the same numbers as the CPU backend's).
Status rope_cuda(float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t rope_dim, RopePairing pairing,
                 const float* cos_sin, const int32_t* pos, cudaStream_t stream);

// Store k[n][kv_dim] and v[n][kv_dim] at cache rows pos[0] .. pos[0] + n - 1, converted to the
// cache's dtype (F16, BF16 or F32).
Status kv_append_cuda(const KvLayer& cache, const float* k, const float* v, int64_t n, const int32_t* pos,
                      cudaStream_t stream);

// Causal attention with grouped-query heads, as attention in native/cpu/kernels.h: query row i
// (position pos[0] + i) attends to cache rows 0 .. pos[0] + i; query head h reads KV head
// h / (n_heads / n_kv_heads); scale 1/sqrt(head_dim); softmax in f32. q and out are
// [n][n_heads * head_dim]. Decode (small n) splits the KV length across blocks with an
// online-softmax merge and handles all query heads of one KV head together; prefill (large n) is
// a tiled causal kernel that never materializes the score matrix. Grids depend on n and
// cache.capacity only.
size_t attention_workspace_bytes(int64_t max_n, int64_t n_heads, int64_t head_dim, int64_t capacity);
Status attention_cuda(float* out, const float* q, const KvLayer& cache, int64_t n, const int32_t* pos, int64_t n_heads,
                      int64_t n_kv_heads, int64_t head_dim, Workspace ws, cudaStream_t stream);

// out = silu(gate) * up and out = a + b, elementwise over count values (out may alias inputs).
Status swiglu_cuda(float* out, const float* gate, const float* up, int64_t count, cudaStream_t stream);
Status add_cuda(float* out, const float* a, const float* b, int64_t count, cudaStream_t stream);

}  // namespace lc::cuda
