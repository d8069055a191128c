// The reference CPU kernels: plain loops, one thread, the oracle for every other tier
// (signatures and meaning: kernels.h). Accumulations run in double where that costs nothing
// in clarity, so a fast tier's error is measured against something more exact than itself.
#pragma once

#include "../kernels.h"

namespace lc {

void embed_cpu(const CpuContext& ctx, float* out, const Weight& table, const int32_t* tokens, int64_t n);
void rmsnorm_cpu(const CpuContext& ctx, float* out, const float* x, const float* w, int64_t n, int64_t dim, float eps);
void matmul_cpu(const CpuContext& ctx, float* out, const float* x, const Weight& w, int64_t n);
void rope_cpu(const CpuContext& ctx, float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t rope_dim,
              RopePairing pairing, const float* cos_sin);
void kv_append_cpu(const CpuContext& ctx, const KvLayer& cache, const float* k, const float* v, int64_t n, int64_t pos);
void attention_cpu(const CpuContext& ctx, float* out, const float* q, const KvLayer& cache, int64_t n, int64_t pos,
                   int64_t n_heads, int64_t n_kv_heads, int64_t head_dim);
void swiglu_cpu(const CpuContext& ctx, float* out, const float* gate, const float* up, int64_t count);
void add_cpu(const CpuContext& ctx, float* out, const float* a, const float* b, int64_t count);

}  // namespace lc
