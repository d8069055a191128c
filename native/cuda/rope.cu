// rope: rotary position embedding, in place (CPU twin: native/cpu/ops/rope_cpu.cc).
//
// Layout
//   x        f32 [n][n_heads][head_dim]; the first rope_dim dims of every head rotate, dims
//            rope_dim .. head_dim - 1 are not touched.
//   pairing  Interleaved: pair p = (x[2p], x[2p + 1]) (Meta, llama2.c, GGUF);
//            Half:        pair p = (x[p], x[p + rope_dim / 2]) (Hugging Face).
//   cos_sin  f32 [capacity][rope_dim / 2][2] (cos, sin of pair p at position t), DEVICE memory,
//            built once per session by the backend (the same numbers as the CPU backend's).
//   pos      int32 [1], DEVICE memory: row i is at position pos[0] + i (graph replay: the position
//            changes between replays, the grid does not).
// Bounds: the table has no size here, so positions must be below its capacity: the backend checks
//   pos + n <= capacity before the step. A negative position is skipped (nothing read or written).
// Grid mapping: block 128 threads; grid.x covers n_heads * units of one row, grid.y = min(n, 65535)
//   with rows strided over y. A unit is
//     Interleaved VEC (rope_dim % 4 == 0): 2 pairs = one float4 of x and one float4 of the table;
//     Half VEC        (rope_dim % 8 == 0): 4 pairs = float4 at p and at p + rope_dim/2, two float4
//                                          of the table;
//     scalar (anything else, or x / cos_sin not 16-byte aligned, or head_dim % 4 != 0): 1 pair.
// Numerics: x0 * c - x1 * s and x0 * s + x1 * c with every product and sum rounded separately
//   (__fmul_rn / __fadd_rn / __fsub_rn, never contracted into an FMA), in the reference's order:
//   bit-identical to rope_cpu (compiled with -ffp-contract=off).
// Fused: nothing (q and k are roped by two calls; the KV append stores the rotated k).
#include <string>

#include "ops.cuh"

namespace lc::cuda {

namespace {

constexpr int kRopeThreads = 128;

__device__ __forceinline__ void rotate(float& x0, float& x1, float c, float s) {
  const float a = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
  const float b = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
  x0 = a;
  x1 = b;
}

// Pairs per unit of work of one thread.
template <RopePairing PAIRING, bool VEC>
__host__ __device__ constexpr int rope_unit_pairs() {
  return !VEC ? 1 : (PAIRING == RopePairing::Interleaved ? 2 : 4);
}

template <RopePairing PAIRING, bool VEC>
__global__ void rope_kernel(float* x, int64_t n, int n_heads, int head_dim, int rope_dim, const float* cos_sin,
                            const int32_t* pos) {
  constexpr int UNIT = rope_unit_pairs<PAIRING, VEC>();
  const int pairs = rope_dim / 2;
  const int units = pairs / UNIT;
  const int t = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (t >= n_heads * units) return;
  const int h = t / units, p0 = (t % units) * UNIT;  // head, first pair of the unit
  const int64_t pos0 = __ldg(pos);
  for (int64_t i = blockIdx.y; i < n; i += gridDim.y) {
    const int64_t position = pos0 + i;
    if (position < 0) continue;
    float* v = x + (i * n_heads + h) * head_dim;
    const float* cs = cos_sin + (position * pairs + p0) * 2;  // (cos, sin) of pairs p0 ..
    if constexpr (!VEC) {
      const int a = PAIRING == RopePairing::Interleaved ? 2 * p0 : p0;
      const int b = PAIRING == RopePairing::Interleaved ? 2 * p0 + 1 : p0 + pairs;
      float x0 = v[a], x1 = v[b];
      rotate(x0, x1, __ldg(cs), __ldg(cs + 1));
      v[a] = x0;
      v[b] = x1;
    } else if constexpr (PAIRING == RopePairing::Interleaved) {
      f128 xv = load128(v + 2 * p0);  // x[2p0], x[2p0+1], x[2p0+2], x[2p0+3]
      const f128 c = load128nc(cs);   // cos p0, sin p0, cos p0+1, sin p0+1
      rotate(xv[0], xv[1], c[0], c[1]);
      rotate(xv[2], xv[3], c[2], c[3]);
      store128(v + 2 * p0, xv);
    } else {
      f128 lo = load128(v + p0);          // x[p0 .. p0+3]
      f128 hi = load128(v + p0 + pairs);  // x[p0+pairs .. p0+pairs+3]
      const f128 c01 = load128nc(cs), c23 = load128nc(cs + 4);
      rotate(lo[0], hi[0], c01[0], c01[1]);
      rotate(lo[1], hi[1], c01[2], c01[3]);
      rotate(lo[2], hi[2], c23[0], c23[1]);
      rotate(lo[3], hi[3], c23[2], c23[3]);
      store128(v + p0, lo);
      store128(v + p0 + pairs, hi);
    }
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <RopePairing PAIRING, bool VEC>
Status launch_rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t rope_dim, const float* cos_sin,
                   const int32_t* pos, cudaStream_t stream) {
  const int64_t units = n_heads * (rope_dim / 2 / rope_unit_pairs<PAIRING, VEC>());
  const dim3 grid(static_cast<unsigned>(ceil_div(units, int64_t(kRopeThreads))),
                  static_cast<unsigned>(n < 65535 ? n : 65535));
  LC_LAUNCH((rope_kernel<PAIRING, VEC>), grid, kRopeThreads, 0, stream, x, n, static_cast<int>(n_heads),
            static_cast<int>(head_dim), static_cast<int>(rope_dim), cos_sin, pos);
  CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

}  // namespace

Status rope_cuda(float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t rope_dim, RopePairing pairing,
                 const float* cos_sin, const int32_t* pos, cudaStream_t stream) {
  if (n <= 0 || n_heads <= 0 || head_dim <= 0 || rope_dim <= 0) {
    return invalid_argument("rope_cuda: sizes must be positive, got n " + std::to_string(n) + ", n_heads " +
                            std::to_string(n_heads) + ", head_dim " + std::to_string(head_dim) + ", rope_dim " +
                            std::to_string(rope_dim));
  }
  if (rope_dim % 2 != 0 || rope_dim > head_dim) {
    return invalid_argument("rope_cuda: rope_dim must be even and at most head_dim " + std::to_string(head_dim) +
                            ", got " + std::to_string(rope_dim));
  }
  if (n_heads * head_dim > 0x7fffffff) {
    return invalid_argument("rope_cuda: row too wide: " + std::to_string(n_heads) + " heads of " +
                            std::to_string(head_dim));
  }
  if (x == nullptr || cos_sin == nullptr || pos == nullptr) return invalid_argument("rope_cuda: null pointer");
  // 16-byte units need aligned rows and heads (x, head_dim % 4) and aligned table entries
  // (cos_sin, and rope_dim / 2 even so every position's row of the table starts 16-byte aligned).
  const bool aligned = aligned16(x) && aligned16(cos_sin) && head_dim % 4 == 0;
  switch (pairing) {
    case RopePairing::Interleaved:
      if (aligned && rope_dim % 4 == 0) {
        return launch_rope<RopePairing::Interleaved, true>(x, n, n_heads, head_dim, rope_dim, cos_sin, pos, stream);
      }
      return launch_rope<RopePairing::Interleaved, false>(x, n, n_heads, head_dim, rope_dim, cos_sin, pos, stream);
    case RopePairing::Half:
      if (aligned && rope_dim % 8 == 0) {
        return launch_rope<RopePairing::Half, true>(x, n, n_heads, head_dim, rope_dim, cos_sin, pos, stream);
      }
      return launch_rope<RopePairing::Half, false>(x, n, n_heads, head_dim, rope_dim, cos_sin, pos, stream);
  }
  return unsupported("rope_cuda: unsupported pairing: " + std::to_string(static_cast<int>(pairing)));
}

}  // namespace lc::cuda
