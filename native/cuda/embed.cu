// embed: out[i][:] = row tokens[i] of the embedding table, dequantized to f32 (CPU twin:
// native/cpu/ops/embed_cpu.cc, whose numbers are core/dequant.h's).
//
// Layout
//   table   [rows = vocab][cols = dim], any dtype of core/dtype.h: F32/F16/BF16 row-major, Q8_0
//           planar (int8 codes [rows][cols], then f16 scales [rows][cols/32]), INT4 group-affine
//           planar (code bytes [rows][cols/2], then f16 {scale, min} [rows][cols/G], G = 32/64/128)
//   tokens  int32 [n], DEVICE memory (graph replay: ids change between replays, the grid does not)
//   out     f32 [n][cols]
// Bounds
//   A token id outside [0, rows) is GUARDED, not clamped: its output row is written as zeros and
//   the table is not read. (The backend validates ids before the step; zeros keep a bad id from
//   reading out of bounds and from silently looking like a real token.)
// Grid mapping
//   block 128 threads; grid.x = column chunks of one row, grid.y = min(n, 65535) with the rows
//   strided over y. Each thread dequantizes one "unit":
//     vector path (data and out 16-byte aligned, cols a multiple of the unit): one 16-byte load
//       F32 4 values, F16/BF16 8 values, Q8_0 16 codes (one scale), INT4 16 code bytes = 32 values
//       (16 low nibbles at group offsets j0.., 16 high nibbles at j0 + G/2.., one {scale, min});
//       stores are 16-byte.
//     scalar path (anything else, e.g. dim 97 or a misaligned out; and every NF4 table, whose
//       lookup is one read of a table value per element anyway): one value per thread.
// Numerics: bit-identical to core/dequant.h: Q8_0 code * scale; INT4 q * scale + min rounded twice
//   (__fmul_rn/__fadd_rn: no FMA contraction, as the reference is compiled with -ffp-contract=off).
// Fused: nothing.
#include <cstdint>
#include <string>

#include "nf4.cuh"
#include "ops.cuh"

namespace lc::cuda {

namespace {

constexpr int kEmbedThreads = 128;

// Values one thread writes on the vector path (one 16-byte load of the table).
template <DType DT>
__host__ __device__ constexpr int embed_unit_values() {
  if constexpr (DT == DType::F32) return 4;
  if constexpr (DT == DType::F16 || DT == DType::BF16) return 8;
  if constexpr (DT == DType::Q8_0) return 16;
  return 32;  // INT4
}

__device__ __forceinline__ float half_bits_to_f32(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }
__device__ __forceinline__ float bf16_bits_to_f32(uint16_t bits) { return __uint_as_float(uint32_t(bits) << 16); }

// Stores 4 consecutive floats (16-byte aligned destination).
__device__ __forceinline__ void store4(float* dst, float a, float b, float c, float d) {
  f128 v;
  v[0] = a;
  v[1] = b;
  v[2] = c;
  v[3] = d;
  store128(dst, v);
}

// One 16-byte unit of row `token` (vector path) into out_row; unit index u within the row.
template <DType DT>
__device__ __forceinline__ void embed_unit_vec(float* out_row, const uint8_t* data, int64_t rows, int64_t cols,
                                               int group, int64_t token, int64_t u) {
  if constexpr (DT == DType::F32) {
    const float* src = reinterpret_cast<const float*>(data) + token * cols + 4 * u;
    store128(out_row + 4 * u, load128nc(src));
  } else if constexpr (DT == DType::F16 || DT == DType::BF16) {
    const uint16_t* src = reinterpret_cast<const uint16_t*>(data) + token * cols + 8 * u;
    const Packed128<uint16_t> h = load128nc(src);
    float f[8];
#pragma unroll
    for (int k = 0; k < 8; k++) f[k] = (DT == DType::F16) ? half_bits_to_f32(h[k]) : bf16_bits_to_f32(h[k]);
    store4(out_row + 8 * u, f[0], f[1], f[2], f[3]);
    store4(out_row + 8 * u + 4, f[4], f[5], f[6], f[7]);
  } else if constexpr (DT == DType::Q8_0) {
    const int8_t* codes = reinterpret_cast<const int8_t*>(data) + token * cols + 16 * u;
    const uint16_t* scales = reinterpret_cast<const uint16_t*>(data + rows * cols) + token * (cols / kQ8Group);
    const float d = half_bits_to_f32(__ldg(scales + (16 * u) / kQ8Group));
    const i8x16 q = load128nc(codes);
#pragma unroll
    for (int k = 0; k < 16; k += 4) {
      store4(out_row + 16 * u + k, __fmul_rn(float(q[k]), d), __fmul_rn(float(q[k + 1]), d),
             __fmul_rn(float(q[k + 2]), d), __fmul_rn(float(q[k + 3]), d));
    }
  } else {  // INT4: 16 code bytes of one group
    const int64_t half = group / 2;
    const int64_t b0 = 16 * u;  // byte offset in the row's codes
    const int64_t gi = b0 / half, j0 = b0 % half;
    const uint8_t* codes = data + token * (cols / 2) + b0;
    const uint16_t* params = reinterpret_cast<const uint16_t*>(data + rows * (cols / 2)) + token * (cols / group) * 2;
    const float scale = half_bits_to_f32(__ldg(params + 2 * gi));
    const float min = half_bits_to_f32(__ldg(params + 2 * gi + 1));
    const Packed128<uint8_t> q = load128nc(codes);
    float* lo = out_row + gi * group + j0;         // weights j0 .. j0 + 15 of the group
    float* hi = out_row + gi * group + half + j0;  // weights j0 + G/2 .. j0 + G/2 + 15
#pragma unroll
    for (int k = 0; k < 16; k += 4) {
      store4(lo + k, __fadd_rn(__fmul_rn(float(q[k] & 0x0F), scale), min),
             __fadd_rn(__fmul_rn(float(q[k + 1] & 0x0F), scale), min),
             __fadd_rn(__fmul_rn(float(q[k + 2] & 0x0F), scale), min),
             __fadd_rn(__fmul_rn(float(q[k + 3] & 0x0F), scale), min));
      store4(hi + k, __fadd_rn(__fmul_rn(float(q[k] >> 4), scale), min),
             __fadd_rn(__fmul_rn(float(q[k + 1] >> 4), scale), min),
             __fadd_rn(__fmul_rn(float(q[k + 2] >> 4), scale), min),
             __fadd_rn(__fmul_rn(float(q[k + 3] >> 4), scale), min));
    }
  }
}

// Value c of row `token` (scalar path): the formulas of core/dequant.h.
template <DType DT>
__device__ __forceinline__ float embed_value(const uint8_t* data, int64_t rows, int64_t cols, int group, int64_t token,
                                             int64_t c) {
  if constexpr (DT == DType::F32) {
    return __ldg(reinterpret_cast<const float*>(data) + token * cols + c);
  } else if constexpr (DT == DType::F16) {
    return half_bits_to_f32(__ldg(reinterpret_cast<const uint16_t*>(data) + token * cols + c));
  } else if constexpr (DT == DType::BF16) {
    return bf16_bits_to_f32(__ldg(reinterpret_cast<const uint16_t*>(data) + token * cols + c));
  } else if constexpr (DT == DType::Q8_0) {
    const int8_t code = __ldg(reinterpret_cast<const int8_t*>(data) + token * cols + c);
    const uint16_t* scales = reinterpret_cast<const uint16_t*>(data + rows * cols) + token * (cols / kQ8Group);
    return __fmul_rn(float(code), half_bits_to_f32(__ldg(scales + c / kQ8Group)));
  } else if constexpr (DT == DType::NF4) {  // table[q] * f32 scale, blocks of 64 (core/nf4.h)
    const int64_t gi = c / 64, j = c % 64;
    const uint8_t byte = __ldg(data + token * (cols / 2) + gi * 32 + (j % 32));
    const int q = (j < 32) ? (byte & 0x0F) : (byte >> 4);
    const float* scales = reinterpret_cast<const float*>(data + rows * (cols / 2)) + token * (cols / 64);
    return __fmul_rn(nf4_table_value(q), __ldg(scales + gi));
  } else {
    const int64_t half = group / 2, gi = c / group, j = c % group;
    const uint8_t byte = __ldg(data + token * (cols / 2) + gi * half + (j % half));
    const int q = (j < half) ? (byte & 0x0F) : (byte >> 4);
    const uint16_t* params = reinterpret_cast<const uint16_t*>(data + rows * (cols / 2)) + token * (cols / group) * 2;
    const float scale = half_bits_to_f32(__ldg(params + 2 * gi)), min = half_bits_to_f32(__ldg(params + 2 * gi + 1));
    return __fadd_rn(__fmul_rn(float(q), scale), min);
  }
}

// out[i][:] = dequantized row tokens[i] of the table. VEC: one 16-byte unit per thread (see the
// header), else one value per thread. grid (ceil(units / 128), min(n, 65535)), block 128.
template <DType DT, bool VEC>
__global__ void embed_kernel(float* out, const uint8_t* data, const int32_t* tokens, int64_t n, int64_t rows,
                             int64_t cols, int group) {
  const int64_t per_unit = VEC ? embed_unit_values<DT>() : 1;
  const int64_t units = cols / per_unit;
  const int64_t u = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (u >= units) return;
  for (int64_t i = blockIdx.y; i < n; i += gridDim.y) {
    const int64_t token = __ldg(tokens + i);
    float* out_row = out + i * cols;
    const bool valid = token >= 0 && token < rows;  // guard: an invalid id reads nothing, writes zeros
    if constexpr (VEC) {
      if (valid) {
        embed_unit_vec<DT>(out_row, data, rows, cols, group, token, u);
      } else if constexpr (DT == DType::INT4) {
        const int64_t half = group / 2, b0 = 16 * u, gi = b0 / half, j0 = b0 % half;
        for (int k = 0; k < 16; k += 4) {
          store128(out_row + gi * group + j0 + k, f128::zeros());
          store128(out_row + gi * group + half + j0 + k, f128::zeros());
        }
      } else {
        for (int k = 0; k < embed_unit_values<DT>(); k += 4) store128(out_row + per_unit * u + k, f128::zeros());
      }
    } else {
      out_row[u] = valid ? embed_value<DT>(data, rows, cols, group, token, u) : 0.0f;
    }
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <DType DT>
Status launch_embed(float* out, const Weight& table, const int32_t* tokens, int64_t n, cudaStream_t stream) {
  constexpr int64_t per_unit = embed_unit_values<DT>();
  // Q8_0 / INT4 rows are whole groups (cols % 32 == 0), so their code rows, scale arrays and out
  // rows stay 16-byte aligned when the base pointers are; F32/F16/BF16 need cols % unit == 0.
  const bool vec = DT != DType::NF4 && aligned16(out) && aligned16(table.data) && table.cols % per_unit == 0;
  const int64_t units = vec ? table.cols / per_unit : table.cols;
  const dim3 grid(static_cast<unsigned>(ceil_div(units, int64_t(kEmbedThreads))),
                  static_cast<unsigned>(n < 65535 ? n : 65535));
  const int group = static_cast<int>(table.group);
  if constexpr (DT != DType::NF4) {
    if (vec) {
      LC_LAUNCH((embed_kernel<DT, true>), grid, kEmbedThreads, 0, stream, out, table.data, tokens, n, table.rows,
                table.cols, group);
      CUDA_TRY(cudaGetLastError());
      return Status::Ok();
    }
  }
  {
    LC_LAUNCH((embed_kernel<DT, false>), grid, kEmbedThreads, 0, stream, out, table.data, tokens, n, table.rows,
              table.cols, group);
  }
  CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

}  // namespace

Status embed_cuda(float* out, const Weight& table, const int32_t* tokens, int64_t n, cudaStream_t stream) {
  if (n <= 0) return invalid_argument("embed_cuda: n must be positive, got " + std::to_string(n));
  if (table.rows <= 0 || table.cols <= 0) {
    return invalid_argument("embed_cuda: impossible table shape " + std::to_string(table.rows) + "x" +
                            std::to_string(table.cols));
  }
  if (out == nullptr || tokens == nullptr || table.data == nullptr) return invalid_argument("embed_cuda: null pointer");
  switch (table.dtype) {
    case DType::F32: return launch_embed<DType::F32>(out, table, tokens, n, stream);
    case DType::F16: return launch_embed<DType::F16>(out, table, tokens, n, stream);
    case DType::BF16: return launch_embed<DType::BF16>(out, table, tokens, n, stream);
    case DType::Q8_0:
      if (table.cols % kQ8Group != 0) {
        return invalid_argument("embed_cuda: q8_0 needs cols divisible by 32, got " + std::to_string(table.cols));
      }
      return launch_embed<DType::Q8_0>(out, table, tokens, n, stream);
    case DType::INT4:
      if (table.group != 32 && table.group != 64 && table.group != 128) {
        return unsupported("embed_cuda: unsupported int4 group size: " + std::to_string(table.group) +
                           " (32, 64 or 128)");
      }
      if (table.cols % table.group != 0) {
        return invalid_argument("embed_cuda: int4 cols " + std::to_string(table.cols) + " not divisible by group " +
                                std::to_string(table.group));
      }
      return launch_embed<DType::INT4>(out, table, tokens, n, stream);
    case DType::NF4:
      if (table.cols % 64 != 0) {
        return invalid_argument("embed_cuda: nf4 needs cols divisible by 64, got " + std::to_string(table.cols));
      }
      return launch_embed<DType::NF4>(out, table, tokens, n, stream);
  }
  return unsupported("embed_cuda: unsupported weight dtype: " + std::to_string(static_cast<int>(table.dtype)));
}

}  // namespace lc::cuda
