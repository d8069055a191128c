// cuda_check_matmul: matmul_cuda (native/cuda/matvec.cu + matmul.cu) against the CPU reference
// matmul_cpu (exact dequantization, double accumulation), every weight dtype of core/dtype.h,
// every kernel path (decode matvec, tensor-core GEMM, f32 SIMT GEMM, split-K), awkward sizes.
// Built twice (CMakeLists.txt, "CUDA kernel checks"): cuda_check_matmul runs the kernels under the
// SIMT emulator on any CPU; cuda_check_matmul_gpu is the nvcc build for a GPU (exits 0 without one).
//
// Inputs: random weights (uniform [-1, 1] quantized into the dtype's layout with core/quantize.h or
// converted with core/half.h) with random activations; and position-encoded weights with one-hot
// activation rows, so that out[i][r] = W[r][c_i] is a single weight: a wrong row, column, nibble,
// group or stride gives a wrong number, not a slightly-off one. Position values: F32 W[r][c] =
// r + c/4096 (exact); the other dtypes hold small integers picked by a hash of (r, c) (bf16-exact,
// so exact through every path, and no period a stride bug could alias with).
// Also checked: writes past out[n][rows] and past the workspace (guard sentinels), and the
// readable errors for unsupported shapes.
//
// Usage: cuda_check_matmul [--quick] [--filter TEXT] [-v]
//   --quick: skip the 4096 x 4096 cases; --filter: only cases whose name contains TEXT; -v: list passes
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dequant.h"
#include "core/half.h"
#include "core/nf4.h"
#include "core/quantize.h"
#include "cpu/ops/ops.h"
#include "cuda/ops.cuh"
#include "tests/cuda_check_util.h"

// A Status from a CUDA runtime call (cudaDeviceSynchronize after the launches).
#define CUDA_ERROR_STATUS(expr) ([&]() -> ::lc::Status { CUDA_TRY(expr); return ::lc::Status::Ok(); }())

namespace lc::cuda::detail {
// matmul.cu: run one chosen kernel path (the check's hook; matmul_cuda is Auto with no forcing).
enum class MatmulPath { Auto, Matvec, TensorCore, Simt };
Status matmul_cuda_path(float* out, const float* x, const Weight& w, int64_t n, Workspace ws, MatmulPath path,
                        int force_splits, cudaStream_t stream);
}  // namespace lc::cuda::detail

namespace lc::check {
namespace {

using cuda::detail::MatmulPath;

const char* path_name(MatmulPath p) {
  switch (p) {
    case MatmulPath::Auto: return "auto";
    case MatmulPath::Matvec: return "matvec";
    case MatmulPath::TensorCore: return "tensorcore";
    case MatmulPath::Simt: return "simt";
  }
  return "?";
}

// What Auto picks (mirrors matmul_cuda_path; device buffers here are 256-byte aligned).
MatmulPath auto_path(DType dt, int64_t cols, int64_t n) {
  if (n <= 8) return MatmulPath::Matvec;
  if (dt == DType::F32) return MatmulPath::Simt;
  if ((dt == DType::F16 || dt == DType::BF16) && cols % 8 != 0) return MatmulPath::Simt;
  return MatmulPath::TensorCore;
}

// =================================================================================================
// The tolerance table: the only place tolerances live.
//   |got - ref| <= rtol * mag + atol,   mag[i][r] = sum_c |w[r][c]| * |x[i][c]|   (double)
// where for INT4 |w| is |q * scale| + |min|: the kernels sum scale * sum(q x) + min * sum(x), so
// their rounding scales with those terms, not with |w| after cancellation. ref is matmul_cpu.
// =================================================================================================
Tolerance tolerance(MatmulPath path, DType dt) {
  switch (path) {
    case MatmulPath::Matvec:
      // f32 activations, f32 products and sums. Longest rounding chain per output for cols <= 4096:
      // 128 sequential FMAs per lane (bf16: 16 chunks x 8; f32: 32 x 4; q8/int4 are shorter), 5
      // shuffle adds, <= 32 split-K partial adds: <= 165 roundings of <= 2^-24 of mag = 9.8e-6.
      return {1e-30, 1e-5};
    case MatmulPath::Simt:
      // f32 SIMT GEMM: each 16-wide k-tile summed apart (16 FMAs), then K/16 tile adds: 272
      // roundings for K = 4096, 272 * 2^-24 = 1.6e-5.
      return {1e-30, 2e-5};
    case MatmulPath::TensorCore:
    case MatmulPath::Auto:
      if (dt == DType::F16) {
        // As below, plus the f16 -> bf16 rounding of each weight (2^-8 relative):
        // (1 + 2^-8)^2 - 1 < 2^-7 + 2^-16, plus the accumulation term.
        return {1e-30, std::ldexp(1.0, -7) + std::ldexp(1.0, -14)};
      }
      if (dt == DType::NF4) {
        // As below, plus the NF4 table values rounded to bf16 (2^-9 relative; the f32 scale is
        // applied in f32): (1 + 2^-8)(1 + 2^-9) - 1 < 2^-8 + 2^-9 + 2^-17.
        return {1e-30, std::ldexp(1.0, -8) + std::ldexp(1.0, -9) + std::ldexp(1.0, -14)};
      }
      // x -> bf16 rounds to nearest with 8 significant bits: |dx| <= 2^-8 |x| per element (the
      // worst case, just above a power of two), so the error is <= 2^-8 mag.
      // Weights reach the mma exactly (bf16 copied; q8 codes |q| <= 128 and int4 q <= 15 are
      // bf16-exact, scales/mins applied in f32). f32 accumulation on tensor cores, not guaranteed
      // round-to-nearest: <= 400 chained adds for K = 4096 (K/16 mma + K/32 scale FMAs + 16 inside
      // an mma) at <= 2^-23 each = 4.8e-5 < 2^-14.
      return {1e-30, std::ldexp(1.0, -8) + std::ldexp(1.0, -14)};
  }
  return {0, 0};
}

// ---- host weights in the dtype.h layouts ----------------------------------------------------------

struct HostWeight {
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0, group = 0;
  std::vector<uint8_t> bytes;

  Weight view(uint8_t* data) const {
    Weight w;
    w.dtype = dtype;
    w.rows = rows;
    w.cols = cols;
    w.group = dtype == DType::INT4 ? group : dtype == DType::Q8_0 ? kQ8Group : dtype == DType::NF4 ? 64 : 0;
    w.data = data;
    w.nbytes = bytes.size();
    return w;
  }
};

uint32_t mix(uint32_t r, uint32_t c) {
  uint32_t h = r * 0x9E3779B1u ^ (c + 0x7F4A7C15u) * 0x85EBCA77u;
  h ^= h >> 15;
  h *= 0x2C1B3C6Du;
  h ^= h >> 12;
  return h;
}

HostWeight build_weight(DType dt, int64_t rows, int64_t cols, int64_t group, bool position, std::mt19937& rng) {
  HostWeight hw;
  hw.dtype = dt;
  hw.rows = rows;
  hw.cols = cols;
  hw.group = group;
  hw.bytes.assign(weight_bytes(dt, rows, cols, group), 0);
  uint8_t* data = hw.bytes.data();
  const Weight w = hw.view(data);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; r++) {
    if (position && dt == DType::Q8_0) {
      int8_t* codes = reinterpret_cast<int8_t*>(data) + r * cols;
      uint16_t* scales = const_cast<uint16_t*>(w.q8_scales(r));
      for (int64_t c = 0; c < cols; c++) codes[c] = int8_t(int(mix(uint32_t(r), uint32_t(c)) % 255u) - 127);
      for (int64_t g = 0; g < cols / kQ8Group; g++) scales[g] = f32_to_f16(1.0f + float((r + 3 * g) % 8) / 8.0f);
      continue;
    }
    if (position && dt == DType::INT4) {
      uint8_t* codes = data + r * (cols / 2);
      uint16_t* params = const_cast<uint16_t*>(w.int4_params(r));
      const int64_t half = group / 2;
      for (int64_t c = 0; c < cols; c++) {
        const int64_t gi = c / group, j = c % group;
        const uint8_t q = uint8_t(mix(uint32_t(r), uint32_t(c)) & 15u);
        uint8_t& byte = codes[gi * half + j % half];
        byte = j < half ? uint8_t((byte & 0xF0) | q) : uint8_t((byte & 0x0F) | (q << 4));
      }
      for (int64_t gi = 0; gi < cols / group; gi++) {
        params[2 * gi] = f32_to_f16(1.0f + float((r + gi) % 4) / 4.0f);
        params[2 * gi + 1] = f32_to_f16(-float((5 * r + gi) % 8));
      }
      continue;
    }
    if (position && dt == DType::NF4) {  // hashed codes (every nibble position distinct), scales 1..1.75
      uint8_t* codes = data + r * (cols / 2);
      float* scales = const_cast<float*>(w.nf4_scales(r));
      for (int64_t c = 0; c < cols; c++) {
        const int64_t gi = c / 64, j = c % 64;
        const uint8_t q = uint8_t(mix(uint32_t(r), uint32_t(c)) & 15u);
        uint8_t& byte = codes[gi * 32 + j % 32];
        byte = j < 32 ? uint8_t((byte & 0xF0) | q) : uint8_t((byte & 0x0F) | (q << 4));
      }
      for (int64_t gi = 0; gi < cols / 64; gi++) scales[gi] = 1.0f + float((r + 3 * gi) % 4) / 4.0f;
      continue;
    }
    for (int64_t c = 0; c < cols; c++) {
      if (!position) {
        row[size_t(c)] = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
      } else if (dt == DType::F32) {
        row[size_t(c)] = float(r) + float(c) / 4096.0f;  // exact for r, c < 4096
      } else {
        row[size_t(c)] = float(int(mix(uint32_t(r), uint32_t(c)) % 61u) - 30);
      }
    }
    switch (dt) {
      case DType::F32: std::memcpy(data + r * cols * 4, row.data(), size_t(cols) * 4); break;
      case DType::F16:
        for (int64_t c = 0; c < cols; c++) reinterpret_cast<uint16_t*>(data)[r * cols + c] = f32_to_f16(row[size_t(c)]);
        break;
      case DType::BF16:
        for (int64_t c = 0; c < cols; c++) reinterpret_cast<uint16_t*>(data)[r * cols + c] = f32_to_bf16(row[size_t(c)]);
        break;
      case DType::Q8_0:
        quantize_row_q8_0(reinterpret_cast<int8_t*>(data) + r * cols, const_cast<uint16_t*>(w.q8_scales(r)), row.data(),
                          cols);
        break;
      case DType::INT4:
        quantize_row_int4(data + r * (cols / 2), const_cast<uint16_t*>(w.int4_params(r)), row.data(), cols, group);
        break;
      case DType::NF4:
        quantize_row_nf4(data + r * (cols / 2), const_cast<float*>(w.nf4_scales(r)), row.data(), cols);
        break;
    }
  }
  return hw;
}

// |w[r][c]| as the tolerance sees it (INT4: |q * scale| + |min|).
void abs_weight_row(std::vector<double>& out, const Weight& w, int64_t r) {
  out.resize(size_t(w.cols));
  if (w.dtype == DType::INT4) {
    const int64_t g = w.group, half = g / 2;
    const uint8_t* codes = w.int4_codes(r);
    const uint16_t* params = w.int4_params(r);
    for (int64_t c = 0; c < w.cols; c++) {
      const int64_t gi = c / g, j = c % g;
      const uint8_t byte = codes[gi * half + j % half];
      const int q = j < half ? (byte & 0x0F) : (byte >> 4);
      out[size_t(c)] = std::fabs(double(q) * f16_to_f32(params[2 * gi])) + std::fabs(double(f16_to_f32(params[2 * gi + 1])));
    }
    return;
  }
  std::vector<float> row(size_t(w.cols));
  dequantize_row(row.data(), w, r);
  for (int64_t c = 0; c < w.cols; c++) out[size_t(c)] = std::fabs(double(row[size_t(c)]));
}

// |got - ref| <= rtol * mag + atol elementwise, with the evidence style.md asks for.
bool compare_mag(const std::string& what, const float* got, const float* ref, const double* mag, size_t count,
                 size_t rows, Tolerance tol) {
  cases()++;
  size_t faults = 0, worst = 0, non_finite = 0;
  double worst_ratio = -1.0, max_err = 0.0;
  for (size_t i = 0; i < count; i++) {
    const double err = std::fabs(double(got[i]) - double(ref[i]));
    non_finite += !std::isfinite(got[i]);
    const double allowed = tol.atol + tol.rtol * mag[i];
    const double ratio = std::isfinite(err) ? err / allowed : 1e300;
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = i;
    }
    if (std::isfinite(err)) max_err = std::fmax(max_err, err);
    if (!(ratio <= 1.0)) faults++;
  }
  if (faults == 0) return true;
  failures()++;
  std::printf("FAIL %s: %zu of %zu out of tolerance (|err| <= %g * mag + %g), max finite |err| %g, %zu not finite\n",
              what.c_str(), faults, count, tol.rtol, tol.atol, max_err, non_finite);
  std::printf("  first:");
  for (size_t i = 0; i < count && i < 5; i++) std::printf(" [%zu] %.7g vs %.7g", i, double(got[i]), double(ref[i]));
  std::printf("\n  worst: [%zu] (token %zu, row %zu) %.7g vs %.7g (mag %.4g, %.3g x the tolerance)\n", worst,
              worst / rows, worst % rows, double(got[worst]), double(ref[worst]), mag[worst], worst_ratio);
  size_t listed = 0;
  for (size_t i = 0; i < count && listed < 10; i++) {
    const double err = std::fabs(double(got[i]) - double(ref[i]));
    if (!(err <= tol.atol + tol.rtol * mag[i])) {
      std::printf("  fault [%zu] (token %zu, row %zu) %.7g vs %.7g\n", i, i / rows, i % rows, double(got[i]),
                  double(ref[i]));
      listed++;
    }
  }
  return false;
}

struct Case {
  DType dtype;
  int64_t group;  // INT4 only
  int64_t rows, cols, n;
  bool position = false;
  MatmulPath path = MatmulPath::Auto;
  int splits = 0;  // 0: the launcher's choice
};

std::string case_name(const Case& c) {
  std::string dt = dtype_name(c.dtype);
  if (c.dtype == DType::INT4) dt += "/g" + std::to_string(c.group);
  std::string s = "matmul " + dt + " " + std::to_string(c.rows) + "x" + std::to_string(c.cols) + " n=" +
                  std::to_string(c.n) + (c.position ? " position" : " random") + " path=" + path_name(c.path);
  if (c.splits > 0) s += " splits=" + std::to_string(c.splits);
  return s;
}

constexpr float kSentinel = -1.25e-33f;  // a value no kernel computes here
constexpr size_t kGuardFloats = 64;
constexpr size_t kGuardBytes = 256;

// Largest |got - ref| / mag seen per (path, dtype), printed at the end: how much of each
// tolerance the kernels use.
std::vector<std::pair<std::string, double>>& error_summary() {
  static std::vector<std::pair<std::string, double>> v;
  return v;
}
void note_error(const std::string& key, const float* got, const float* ref, const double* mag, size_t count) {
  double worst = 0.0;
  for (size_t i = 0; i < count; i++) {
    if (mag[i] > 0.0) worst = std::fmax(worst, std::fabs(double(got[i]) - double(ref[i])) / mag[i]);
  }
  for (auto& e : error_summary()) {
    if (e.first == key) {
      e.second = std::fmax(e.second, worst);
      return;
    }
  }
  error_summary().push_back({key, worst});
}

std::string& name_filter() {
  static std::string f;
  return f;
}

void run_case(const Case& c, std::mt19937& rng, bool verbose) {
  const std::string name = case_name(c);
  if (!name_filter().empty() && name.find(name_filter()) == std::string::npos) return;
  const HostWeight hw = build_weight(c.dtype, c.rows, c.cols, c.group, c.position, rng);
  const Weight hweight = hw.view(const_cast<uint8_t*>(hw.bytes.data()));

  // Activations: random, or one-hot rows (row i picks column c_i, spread over the k-tiles).
  std::vector<float> x(size_t(c.n * c.cols), 0.0f);
  if (c.position) {
    for (int64_t i = 0; i < c.n; i++) x[size_t(i * c.cols + (i * 97 + 13) % c.cols)] = 1.0f;
  } else {
    x = random_floats(rng, x.size());
  }

  // Reference and magnitudes.
  std::vector<float> ref(size_t(c.n * c.rows));
  matmul_cpu(CpuContext{}, ref.data(), x.data(), hweight, c.n);
  std::vector<double> mag(ref.size()), absw;
  for (int64_t r = 0; r < c.rows; r++) {
    abs_weight_row(absw, hweight, r);
    for (int64_t i = 0; i < c.n; i++) {
      double m = 0.0;
      for (int64_t k = 0; k < c.cols; k++) m += absw[size_t(k)] * std::fabs(double(x[size_t(i * c.cols + k)]));
      mag[size_t(i * c.rows + r)] = m;
    }
  }

  // Device buffers; out and workspace followed by guard sentinels.
  DeviceArray<uint8_t> dw(hw.bytes);
  DeviceArray<float> dx(x);
  const size_t out_count = size_t(c.n * c.rows);
  DeviceArray<float> dout(std::vector<float>(out_count + kGuardFloats, kSentinel));
  // Exactly the contract's size (a forced tensor-core run at n <= 8 sizes it as for n = 9, the
  // smallest n that matmul_cuda sends there).
  const int64_t ws_n = c.path == MatmulPath::TensorCore ? std::max<int64_t>(c.n, 9) : c.n;
  const size_t ws_bytes = cuda::matmul_workspace_bytes(ws_n, c.cols, c.rows);
  std::vector<uint8_t> ws_fill(ws_bytes + kGuardBytes, 0xA5);
  DeviceArray<uint8_t> dws(ws_fill);
  const Weight dweight = hw.view(dw.get());

  const Status st = cuda::detail::matmul_cuda_path(dout.get(), dx.get(), dweight, c.n,
                                                   cuda::Workspace{ws_bytes ? dws.get() : nullptr, ws_bytes}, c.path,
                                                   c.splits, 0);
  if (!expect_ok(st, name)) return;
  if (!expect_ok(CUDA_ERROR_STATUS(cudaDeviceSynchronize()), name)) return;

  const std::vector<float> got = dout.download();
  const MatmulPath eff = c.path == MatmulPath::Auto ? auto_path(c.dtype, c.cols, c.n) : c.path;
  const bool ok = compare_mag(name, got.data(), ref.data(), mag.data(), out_count, size_t(c.rows), tolerance(eff, c.dtype));
  note_error(std::string(path_name(eff)) + " " + dtype_name(c.dtype), got.data(), ref.data(), mag.data(), out_count);
  // Guards: nothing written past out[n][rows] or past the workspace.
  size_t bad_out = 0, bad_ws = 0;
  for (size_t i = out_count; i < got.size(); i++) bad_out += std::memcmp(&got[i], &kSentinel, 4) != 0;
  const std::vector<uint8_t> ws_after = dws.download();
  for (size_t i = ws_bytes; i < ws_after.size(); i++) bad_ws += ws_after[i] != 0xA5;
  if (bad_out || bad_ws) {
    cases()++;
    failures()++;
    std::printf("FAIL %s: wrote past the end: %zu guard floats after out, %zu guard bytes after the workspace (%zu bytes)\n",
                name.c_str(), bad_out, bad_ws, ws_bytes);
  }
  if (verbose && ok) std::printf("ok   %s\n", name.c_str());
}

// Capture matmul_cuda into a CUDA graph once (global capture mode, as the backend captures the
// decode step), then replay it on new activations: every launch, the split-K choice and the
// cudaFuncSetAttribute call must be legal under capture, and nothing may be baked in but pointers.
void run_graph_case(DType dt, int64_t group, int64_t rows, int64_t cols, int64_t n, std::mt19937& rng) {
  const std::string name = "graph replay " + std::string(dtype_name(dt)) + " " + std::to_string(rows) + "x" +
                           std::to_string(cols) + " n=" + std::to_string(n);
  if (!name_filter().empty() && name.find(name_filter()) == std::string::npos) return;
  const HostWeight hw = build_weight(dt, rows, cols, group, false, rng);
  const Weight hweight = hw.view(const_cast<uint8_t*>(hw.bytes.data()));
  DeviceArray<uint8_t> dw(hw.bytes);
  DeviceArray<float> dx(size_t(n * cols)), dout(size_t(n * rows));
  const size_t ws_bytes = cuda::matmul_workspace_bytes(n, cols, rows);
  DeviceArray<uint8_t> dws(ws_bytes);
  const Weight dweight = hw.view(dw.get());
  cudaStream_t stream = nullptr;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  if (!expect_ok(CUDA_ERROR_STATUS(cudaStreamCreate(&stream)), name)) return;
  if (!expect_ok(CUDA_ERROR_STATUS(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal)), name)) return;
  const Status st = cuda::matmul_cuda(dout.get(), dx.get(), dweight, n, cuda::Workspace{dws.get(), ws_bytes}, stream);
  const Status end = CUDA_ERROR_STATUS(cudaStreamEndCapture(stream, &graph));
  if (expect_ok(st, name + " (capture)") && expect_ok(end, name + " (end capture)") &&
      expect_ok(CUDA_ERROR_STATUS(cudaGraphInstantiate(&exec, graph, 0)), name)) {
    for (int replay = 0; replay < 2; replay++) {
      const std::vector<float> x = random_floats(rng, size_t(n * cols));
      dx.upload(x);
      if (!expect_ok(CUDA_ERROR_STATUS(cudaGraphLaunch(exec, stream)), name)) break;
      if (!expect_ok(CUDA_ERROR_STATUS(cudaStreamSynchronize(stream)), name)) break;
      std::vector<float> ref(size_t(n * rows));
      matmul_cpu(CpuContext{}, ref.data(), x.data(), hweight, n);
      std::vector<double> mag(ref.size()), absw;
      for (int64_t r = 0; r < rows; r++) {
        abs_weight_row(absw, hweight, r);
        for (int64_t i = 0; i < n; i++) {
          double m = 0.0;
          for (int64_t k = 0; k < cols; k++) m += absw[size_t(k)] * std::fabs(double(x[size_t(i * cols + k)]));
          mag[size_t(i * rows + r)] = m;
        }
      }
      const std::vector<float> got = dout.download();
      compare_mag(name + " replay " + std::to_string(replay), got.data(), ref.data(), mag.data(), got.size(), size_t(rows),
                  tolerance(auto_path(dt, cols, n), dt));
    }
  }
  if (exec) cudaGraphExecDestroy(exec);
  if (graph) cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

void expect_error(const char* what, Status st, Code code, const char* needle) {
  cases()++;
  if (st.code == code && st.message.find(needle) != std::string::npos) {
    std::printf("ok   %s: %s: %s\n", what, code_name(st.code), st.message.c_str());
    return;
  }
  failures()++;
  std::printf("FAIL %s: expected %s containing \"%s\", got %s: %s\n", what, code_name(code), needle, code_name(st.code),
              st.message.c_str());
}

bool valid_cols(DType dt, int64_t cols, int64_t group) {
  if (dt == DType::Q8_0) return cols % kQ8Group == 0;
  if (dt == DType::INT4) return cols % group == 0;
  if (dt == DType::NF4) return cols % 64 == 0;
  return true;
}

struct DtypeSpec {
  DType dtype;
  int64_t group;
};

}  // namespace
}  // namespace lc::check

int main(int argc, char** argv) {
  using namespace lc;
  using namespace lc::check;
  const char* kName = "cuda_check_matmul";
  if (!have_device(kName)) return 0;
  bool quick = false, verbose = false;
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strcmp(argv[i], "-v") == 0) verbose = true;
    if (std::strcmp(argv[i], "--filter") == 0 && i + 1 < argc) name_filter() = argv[++i];
  }
  std::mt19937 rng(20240611u);

  const DtypeSpec dtypes[] = {{DType::F32, 0},   {DType::F16, 0},   {DType::BF16, 0}, {DType::Q8_0, 32},
                              {DType::INT4, 32}, {DType::INT4, 64}, {DType::INT4, 128}, {DType::NF4, 64}};
  const int64_t rows_list[] = {1, 3, 17, 113, 256};
  // 40: a multiple of 8 but not of the 32-wide k-tile; 45: odd (the fallback paths); 384: a
  // multiple of every INT4 group size.
  const int64_t cols_list[] = {32, 40, 45, 96, 288, 384, 4096};
  const int64_t n_list[] = {1, 2, 7, 8, 9, 33, 77, 128};

  auto skip = [&](const DtypeSpec& d, int64_t cols) {
    std::printf("skip %s%s cols=%lld: cols must be a multiple of %lld for this dtype\n", dtype_name(d.dtype),
                d.dtype == DType::INT4 ? ("/g" + std::to_string(d.group)).c_str() : "", static_cast<long long>(cols),
                static_cast<long long>(d.dtype == DType::INT4 || d.dtype == DType::NF4 ? d.group : kQ8Group));
  };

  // 1. The sweep through matmul_cuda's own choice (Auto): every dtype x rows x cols x n, random
  //    data; position-encoded data on the same shapes for n in {1, 8, 9, 77}. Long rows (4096)
  //    with the larger n only for the smaller row counts (emulated mma cost).
  for (const DtypeSpec& d : dtypes) {
    for (int64_t cols : cols_list) {
      if (!valid_cols(d.dtype, cols, d.group)) {
        skip(d, cols);
        continue;
      }
      for (int64_t rows : rows_list) {
        for (int64_t n : n_list) {
          // Long rows through the GEMM: a few shapes (each emulated mma costs ~4 us).
          if (cols == 4096 && n > 8 && !((n <= 33 && rows <= 17) || (n == 9 && rows == 113) || (n == 128 && rows == 17))) {
            continue;
          }
          run_case(Case{d.dtype, d.group, rows, cols, n, false}, rng, verbose);
          if (n == 1 || n == 8 || n == 9 || n == 77) run_case(Case{d.dtype, d.group, rows, cols, n, true}, rng, verbose);
        }
      }
    }
  }

  // 1b. NF4 on odd numbers of 64-blocks (the sweep's widths hold 6 or 64 of them).
  for (int64_t cols : {int64_t{64}, int64_t{192}, int64_t{320}}) {
    for (int64_t rows : {int64_t{1}, int64_t{17}, int64_t{113}}) {
      for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{9}, int64_t{33}}) {
        run_case(Case{DType::NF4, 64, rows, cols, n, false}, rng, verbose);
        run_case(Case{DType::NF4, 64, rows, cols, n, true}, rng, verbose);
      }
    }
  }

  // 2. Every path on shapes it is not chosen for: the tensor-core GEMM at n = 1..8 (mostly
  //    padding), matvec for n > 8 (blocks of 8 rows), the SIMT GEMM on f16/bf16.
  for (const DtypeSpec& d : dtypes) {
    for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{8}}) {
      if (d.dtype != DType::F32) run_case(Case{d.dtype, d.group, 113, 384, n, true, MatmulPath::TensorCore}, rng, verbose);
    }
    run_case(Case{d.dtype, d.group, 17, 384, 19, false, MatmulPath::Matvec}, rng, verbose);
    if (d.dtype == DType::F16 || d.dtype == DType::BF16) {
      run_case(Case{d.dtype, d.group, 113, 96, 77, false, MatmulPath::Simt}, rng, verbose);
      run_case(Case{d.dtype, d.group, 113, 96, 77, true, MatmulPath::Simt}, rng, verbose);
    }
  }

  // 3. Split-K, forced (the automatic choice depends on the SM count): matvec and GEMM, with
  //    slices that do not divide the k range evenly, random and position data.
  for (const DtypeSpec& d : dtypes) {
    for (int splits : {2, 3, 7}) {
      run_case(Case{d.dtype, d.group, 113, 4096, 2, false, MatmulPath::Matvec, splits}, rng, verbose);
      run_case(Case{d.dtype, d.group, 113, 4096, 8, true, MatmulPath::Matvec, splits}, rng, verbose);
      if (d.dtype != DType::F32) {
        run_case(Case{d.dtype, d.group, 17, 4096, 33, false, MatmulPath::TensorCore, splits}, rng, verbose);
        run_case(Case{d.dtype, d.group, 17, 4096, 9, true, MatmulPath::TensorCore, splits}, rng, verbose);
      }
    }
  }

  // 4. Llama-sized rows: 4096 x 4096 (automatic split-K for the decode sizes).
  if (!quick) {
    for (const DtypeSpec& d : dtypes) {
      run_case(Case{d.dtype, d.group, 4096, 4096, 1, false}, rng, verbose);
      run_case(Case{d.dtype, d.group, 4096, 4096, 8, true}, rng, verbose);
    }
    run_case(Case{DType::INT4, 128, 4096, 4096, 9, false}, rng, verbose);
    run_case(Case{DType::BF16, 0, 4096, 4096, 9, true}, rng, verbose);
    run_case(Case{DType::Q8_0, 32, 1024, 4096, 128, false}, rng, verbose);
  }

  // 5. CUDA-graph capture and replay (matvec + split-K reduce; GEMM + conversion + split-K).
  run_graph_case(DType::INT4, 64, 113, 4096, 1, rng);
  run_graph_case(DType::Q8_0, 32, 17, 4096, 4, rng);
  run_graph_case(DType::BF16, 0, 17, 4096, 9, rng);
  run_graph_case(DType::INT4, 128, 113, 384, 33, rng);
  run_graph_case(DType::NF4, 64, 113, 4096, 1, rng);
  run_graph_case(DType::NF4, 64, 17, 384, 33, rng);

  // 6. Readable errors.
  {
    DeviceArray<uint8_t> dw(std::vector<uint8_t>(4096, 0));
    DeviceArray<float> dx(std::vector<float>(4096, 0.0f)), dout(std::vector<float>(4096, 0.0f));
    Weight w;
    w.dtype = DType::INT4;
    w.rows = 4;
    w.cols = 64;
    w.group = 16;
    w.data = dw.get();
    expect_error("int4 group 16 is refused", cuda::matmul_cuda(dout.get(), dx.get(), w, 1, {}, 0), Code::Unsupported,
                 "unsupported int4 group size: 16");
    w.group = 64;
    w.cols = 96;
    expect_error("int4 cols not a multiple of the group", cuda::matmul_cuda(dout.get(), dx.get(), w, 1, {}, 0),
                 Code::InvalidArgument, "multiple of the group size");
    w.dtype = DType::NF4;
    w.cols = 96;
    expect_error("nf4 cols not a multiple of 64", cuda::matmul_cuda(dout.get(), dx.get(), w, 1, {}, 0),
                 Code::InvalidArgument, "multiple of 64");
    w.dtype = DType::Q8_0;
    w.cols = 40;
    expect_error("q8_0 cols not a multiple of 32", cuda::matmul_cuda(dout.get(), dx.get(), w, 1, {}, 0),
                 Code::InvalidArgument, "multiple of 32");
    w.dtype = DType::INT4;
    w.cols = 64;
    w.group = 32;
    w.data = dw.get() + 4;
    expect_error("unaligned int4 weights", cuda::matmul_cuda(dout.get(), dx.get(), w, 2, {}, 0), Code::Unsupported,
                 "16-byte aligned");
    w.data = dw.get();
    expect_error("tensor-core workspace too small", cuda::matmul_cuda(dout.get(), dx.get(), w, 9, {dw.get(), 1024}, 0),
                 Code::InvalidArgument, "too small");
    expect_error("f32 weights are not taken by the tensor-core GEMM",
                 cuda::detail::matmul_cuda_path(dout.get(), dx.get(), Weight{DType::F32, 4, 64, 0, dw.get(), 1024}, 9,
                                                {}, MatmulPath::TensorCore, 0, 0),
                 Code::Unsupported, "does not take f32");
  }

  for (const auto& e : error_summary()) {
    std::printf("max |err| / mag  %-18s %.3g (tolerance %.3g)\n", e.first.c_str(), e.second,
                tolerance(e.first.rfind("matvec", 0) == 0 ? MatmulPath::Matvec
                          : e.first.rfind("simt", 0) == 0 ? MatmulPath::Simt
                                                           : MatmulPath::TensorCore,
                          e.first.find("nf4") != std::string::npos ? DType::NF4
                          : e.first.find("f16") != std::string::npos && e.first.find("bf16") == std::string::npos ? DType::F16
                                                                                                                   : DType::BF16)
                    .rtol);
  }
  std::printf("workspace: matmul_workspace_bytes(1, 4096, 32000) = %zu, (512, 11008, 32000) = %zu\n",
              cuda::matmul_workspace_bytes(1, 4096, 32000), cuda::matmul_workspace_bytes(512, 11008, 32000));
  return finish(kName);
}
