// cuda_check_elementwise: the row-wise and elementwise CUDA ops (embed.cu, rmsnorm.cu, rope.cu,
// kv_cache.cu, elementwise.cu) against their CPU reference twins (native/cpu/ops/), on random and
// position-encoded data of awkward sizes. Built two ways (CMakeLists.txt, "CUDA kernel checks"):
//   cuda_check_elementwise      the kernels compiled by g++ and run by the SIMT emulator (no GPU);
//   cuda_check_elementwise_gpu  the kernels compiled by nvcc, run on a GPU (says so and exits 0
//                               when there is none).
// Every launcher takes its 16-byte vector path where sizes and alignment allow it and a scalar path
// otherwise; the cases below reach both (odd sizes, and pointers offset by one float).
// Position-encoded inputs (value = row + col / 2^k, 2^k >= width) make a wrong row or column stride
// show up as a wrong number, not a slightly-off one.
// Output: a FAIL block per failing case (the case, first pairs, worst index, tolerance), one line per
// op family, and "cuda_check_elementwise: N cases, N failed". Exit status 1 on any failure.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/half.h"
#include "core/nf4.h"
#include "core/quantize.h"
#include "cpu/ops/ops.h"
#include "cuda/ops.cuh"
#include "cuda_check_util.h"

namespace lc {
namespace {

using check::DeviceArray;
using check::Tolerance;

// =================================================================================================
// The tolerance table: |got - ref| <= atol + rtol * |ref| (one place, one reason per value).
// =================================================================================================
struct Tolerances {
  // embed: the device dequantizes with the formulas of core/dequant.h, rounding each product and
  // sum as the reference does (no FMA): every dtype, Q8_0 and INT4 included, is bit-exact.
  Tolerance embed{0.0, 0.0};
  // rmsnorm: the reference sums squares in double, the kernel in f32 (per-thread partial sums then
  // a butterfly tree: a chain of 16 values per thread at dim 4096, 32 at most up to 8192). A sum of
  // positive terms has relative error <= (chain + tree depth) * 2^-24: ~2.4e-6 worst case, ~1e-7
  // typical (random rounding); 1/sqrt(.) halves it and adds ~2 ulp; the output then rounds
  // w * (scale * x) exactly as the reference does. rtol 2e-6 (~17 ulp) covers the worst case,
  // is ~6x what is seen (max rel err in the family line: 3.4e-7) and far below any real bug (a
  // dim off by one at 4096 is 1.2e-4); atol 0: a zero reference means x = 0 or w = 0, reproduced
  // exactly.
  Tolerance rmsnorm{0.0, 2e-6};
  // rope: the same f32 table values and the same operations in the same order, each rounded
  // separately (__fmul_rn/__fsub_rn/__fadd_rn; the reference is built with -ffp-contract=off):
  // bit-exact.
  Tolerance rope{0.0, 0.0};
  // kv_append: a copy (f32) or one round-to-nearest-even conversion (f16, bf16): bit-exact.
  Tolerance kv_append{0.0, 0.0};
  // swiglu: only exp differs (CUDA expf: <= 2 ulp; glibc's std::exp: < 1 ulp); 1 + e, the
  // division and the product round the same way, so the result is within ~4 ulp: rtol 1e-6
  // (~8 ulp). atol 1e-30 covers products that land in the subnormal range, where relative error
  // is meaningless (none with these inputs, but a legitimate outcome of silu(-large) * up).
  Tolerance swiglu{1e-30, 1e-6};
  // add: one IEEE addition, bit-exact.
  Tolerance add{0.0, 0.0};
};
constexpr Tolerances kTol;

// ---- per-family bookkeeping ----------------------------------------------------------------------

struct Family {
  Family(const char* family_name, Tolerance tolerance) : name(family_name), tol(tolerance) {}

  const char* name;
  Tolerance tol;
  int cases = 0;
  int failed = 0;
  double max_abs = 0.0;
  double max_rel = 0.0;
  std::string notes;

  // Compares got with ref (check::compare: prints evidence on failure) and keeps the error stats.
  bool check(const std::string& what, const float* got, const float* ref, size_t n) {
    for (size_t i = 0; i < n; i++) {
      const double g = got[i], r = ref[i], err = std::fabs(g - r);
      if (!std::isfinite(err)) continue;
      max_abs = std::max(max_abs, err);
      if (r != 0.0) max_rel = std::max(max_rel, err / std::fabs(r));
    }
    cases++;
    const bool ok = check::compare(std::string(name) + " " + what, got, ref, n, tol);
    if (!ok) failed++;
    return ok;
  }
  bool check(const std::string& what, const std::vector<float>& got, const std::vector<float>& ref) {
    if (got.size() != ref.size()) {
      return fail(what + ": size " + std::to_string(got.size()) + " vs " + std::to_string(ref.size()));
    }
    return check(what, got.data(), ref.data(), got.size());
  }
  // Bit-for-bit equality of 16-bit or 32-bit patterns (for values the float compare cannot judge:
  // inf, -0, NaN).
  template <class T>
  bool check_bits(const std::string& what, const std::vector<T>& got, const std::vector<T>& ref) {
    cases++;
    check::cases()++;
    size_t faults = 0;
    for (size_t i = 0; i < got.size(); i++) {
      if (got[i] == ref[i]) continue;
      if (faults < 10) {
        std::printf("  fault [%zu] bits 0x%llx vs 0x%llx\n", i, static_cast<unsigned long long>(got[i]),
                    static_cast<unsigned long long>(ref[i]));
      }
      faults++;
    }
    if (faults == 0) return true;
    failed++;
    check::failures()++;
    std::printf("FAIL %s %s: %zu of %zu bit patterns differ (exact)\n", name, what.c_str(), faults, got.size());
    return false;
  }
  bool fail(const std::string& msg) {
    cases++;
    failed++;
    check::cases()++;
    check::failures()++;
    std::printf("FAIL %s %s\n", name, msg.c_str());
    return false;
  }
  // A launcher must return this code (argument validation).
  bool expect_code(const Status& st, Code code, const std::string& what) {
    if (st.code == code) {
      cases++;
      check::cases()++;
      return true;
    }
    return fail(what + ": expected " + code_name(code) + ", got " + code_name(st.code) + " (" + st.message + ")");
  }
  bool expect_ok(const Status& st, const std::string& what) {
    if (check::expect_ok(st, std::string(name) + " " + what)) return true;
    cases++;
    failed++;
    return false;
  }
  void summary() const {
    std::printf("%-9s %4d cases, %d failed; max |err| %.3g, max rel err %.3g (atol %g, rtol %g)%s%s\n", name, cases,
                failed, max_abs, max_rel, tol.atol, tol.rtol, notes.empty() ? "" : "; ", notes.c_str());
  }
};

// ---- helpers -------------------------------------------------------------------------------------

// Position encoding: row + col / 2^k with 2^k >= width (and >= 1024): exact in f32 for these sizes.
float pos_value(int64_t row, int64_t col, int64_t width) {
  int64_t p = 1024;
  while (p < width) p *= 2;
  return float(row) + float(col) / float(p);
}

std::vector<float> position_encoded(int64_t rows, int64_t cols) {
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) v[size_t(r * cols + c)] = pos_value(r, c, cols);
  return v;
}

std::string sz(const char* key, int64_t v) { return std::string(key) + "=" + std::to_string(v) + " "; }

// A weight in the layouts of core/dtype.h, from f32 values [rows][cols] (the reference quantizers).
std::vector<uint8_t> encode_weight(DType dt, int64_t rows, int64_t cols, int64_t group, const std::vector<float>& x) {
  std::vector<uint8_t> bytes(weight_bytes(dt, rows, cols, group));
  switch (dt) {
    case DType::F32: std::memcpy(bytes.data(), x.data(), x.size() * 4); break;
    case DType::F16:
    case DType::BF16: {
      auto* h = reinterpret_cast<uint16_t*>(bytes.data());
      for (size_t i = 0; i < x.size(); i++) h[i] = dt == DType::F16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
      break;
    }
    case DType::Q8_0: {
      auto* codes = reinterpret_cast<int8_t*>(bytes.data());
      auto* scales = reinterpret_cast<uint16_t*>(bytes.data() + rows * cols);
      for (int64_t r = 0; r < rows; r++)
        quantize_row_q8_0(codes + r * cols, scales + r * (cols / kQ8Group), x.data() + r * cols, cols);
      break;
    }
    case DType::INT4: {
      uint8_t* codes = bytes.data();
      auto* params = reinterpret_cast<uint16_t*>(bytes.data() + rows * (cols / 2));
      for (int64_t r = 0; r < rows; r++)
        quantize_row_int4(codes + r * (cols / 2), params + r * (cols / group) * 2, x.data() + r * cols, cols, group);
      break;
    }
    case DType::NF4: {
      uint8_t* codes = bytes.data();
      auto* scales = reinterpret_cast<float*>(bytes.data() + rows * (cols / 2));
      for (int64_t r = 0; r < rows; r++)
        quantize_row_nf4(codes + r * (cols / 2), scales + r * (cols / 64), x.data() + r * cols, cols);
      break;
    }
  }
  return bytes;
}

struct Env {
  ThreadPool pool{1};
  CpuContext ctx;
  cudaStream_t stream = nullptr;
  std::mt19937 rng{20240611u};
  Env() { ctx.pool = &pool; }
};

// Runs the device op (a lambda returning Status), then waits for it: a launch or run failure is a
// failed case with the CUDA text.
template <class F>
bool run_op(Env& env, Family& fam, const std::string& what, F&& launch) {
  if (!fam.expect_ok(launch(), what)) return false;
  const cudaError_t err = cudaStreamSynchronize(env.stream);
  if (err != cudaSuccess) {
    fam.fail(what + ": " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
    (void)cudaGetLastError();
    return false;
  }
  return true;
}

// =================================================================================================
// embed
// =================================================================================================
void check_embed(Env& env) {
  Family fam{"embed", kTol.embed};
  struct Config {
    DType dtype;
    int64_t group;
    std::vector<int64_t> dims;
  };
  const std::vector<Config> configs = {
      {DType::F32, 0, {8, 64, 97, 4096}},   {DType::F16, 0, {8, 64, 97, 4096}}, {DType::BF16, 0, {8, 64, 97, 4096}},
      {DType::Q8_0, 32, {32, 96, 4096}},    {DType::INT4, 32, {32, 96, 4096}},  {DType::INT4, 64, {64, 192, 4096}},
      {DType::INT4, 128, {128, 384, 4096}}, {DType::NF4, 64, {64, 192, 4096}},
  };
  const int64_t vocab = 50;
  std::uniform_int_distribution<int32_t> tok(0, int32_t(vocab - 1));
  for (const Config& cfg : configs) {
    for (int64_t dim : cfg.dims) {
      for (int init = 0; init < 2; init++) {
        const std::vector<float> values =
            init == 0 ? position_encoded(vocab, dim) : check::random_floats(env.rng, size_t(vocab * dim), -2.0f, 2.0f);
        std::vector<uint8_t> host = encode_weight(cfg.dtype, vocab, dim, cfg.group, values);
        DeviceArray<uint8_t> dev(host);
        Weight wh;
        wh.dtype = cfg.dtype;
        wh.rows = vocab;
        wh.cols = dim;
        wh.group = cfg.group;
        wh.data = host.data();
        wh.nbytes = host.size();
        Weight wd = wh;
        wd.data = dev.get();
        for (int64_t n : {1, 3, 17, 33}) {
          // out_offset 1: out misaligned by one float, so even aligned shapes take the scalar path
          for (int64_t out_offset : {0, 1}) {
            if (out_offset == 1 && n != 3) continue;
            std::vector<int32_t> tokens(static_cast<size_t>(n));
            for (auto& t : tokens) t = tok(env.rng);
            tokens[0] = int32_t(vocab - 1);  // the last row
            DeviceArray<int32_t> dtok(tokens);
            DeviceArray<float> out(static_cast<size_t>(n * dim + out_offset));
            std::vector<float> ref(static_cast<size_t>(n * dim));
            embed_cpu(env.ctx, ref.data(), wh, tokens.data(), n);
            const std::string dtype = std::string(dtype_name(cfg.dtype)) +
                                      (cfg.dtype == DType::INT4 ? "/g" + std::to_string(cfg.group) : "");
            const std::string what = dtype + " " + sz("dim", dim) + sz("n", n) +
                                     (init == 0 ? "position-encoded" : "random") +
                                     (out_offset ? " out+1 (scalar path)" : "");
            if (!run_op(env, fam, what,
                        [&] { return cuda::embed_cuda(out.get() + out_offset, wd, dtok.get(), n, env.stream); })) {
              continue;
            }
            std::vector<float> got = out.download();
            fam.check(what, got.data() + out_offset, ref.data(), ref.size());
          }
        }
      }
    }
  }
  // Out-of-range ids: guarded, the row comes out as zeros (and nothing is read).
  for (const Config& cfg : configs) {
    const int64_t dim = cfg.dims[1];
    const std::vector<float> values = position_encoded(vocab, dim);
    std::vector<uint8_t> host = encode_weight(cfg.dtype, vocab, dim, cfg.group, values);
    DeviceArray<uint8_t> dev(host);
    Weight wh;
    wh.dtype = cfg.dtype;
    wh.rows = vocab;
    wh.cols = dim;
    wh.group = cfg.group;
    wh.data = host.data();
    wh.nbytes = host.size();
    Weight wd = wh;
    wd.data = dev.get();
    const std::vector<int32_t> tokens = {7, -1, int32_t(vocab), std::numeric_limits<int32_t>::max(),
                                         std::numeric_limits<int32_t>::min(), 0};
    const int64_t n = int64_t(tokens.size());
    DeviceArray<int32_t> dtok(tokens);
    DeviceArray<float> out(static_cast<size_t>(n * dim));
    std::vector<float> ref(static_cast<size_t>(n * dim), 0.0f);
    for (int64_t i = 0; i < n; i++) {
      const int32_t* t = &tokens[size_t(i)];
      if (*t >= 0 && *t < vocab) embed_cpu(env.ctx, ref.data() + i * dim, wh, t, 1);
    }
    const std::string what =
        std::string(dtype_name(cfg.dtype)) + " " + sz("dim", dim) + "ids out of range -> zero rows";
    if (run_op(env, fam, what, [&] { return cuda::embed_cuda(out.get(), wd, dtok.get(), n, env.stream); }))
      fam.check(what, out.download(), ref);
  }
  // Argument validation.
  {
    DeviceArray<float> out(64);
    DeviceArray<int32_t> dtok(std::vector<int32_t>{0});
    DeviceArray<uint8_t> dev(static_cast<size_t>(4096));
    Weight w;
    w.dtype = DType::F32;
    w.rows = 4;
    w.cols = 64;
    w.data = dev.get();
    fam.expect_code(cuda::embed_cuda(out.get(), w, dtok.get(), 0, env.stream), Code::InvalidArgument, "n = 0");
    fam.expect_code(cuda::embed_cuda(out.get(), w, dtok.get(), -3, env.stream), Code::InvalidArgument, "n = -3");
    Weight bad = w;
    bad.cols = 0;
    fam.expect_code(cuda::embed_cuda(out.get(), bad, dtok.get(), 1, env.stream), Code::InvalidArgument, "cols = 0");
    bad = w;
    bad.dtype = static_cast<DType>(9);
    fam.expect_code(cuda::embed_cuda(out.get(), bad, dtok.get(), 1, env.stream), Code::Unsupported, "dtype 9");
    bad = w;
    bad.dtype = DType::INT4;
    bad.group = 48;
    fam.expect_code(cuda::embed_cuda(out.get(), bad, dtok.get(), 1, env.stream), Code::Unsupported, "int4 group 48");
    bad = w;
    bad.dtype = DType::Q8_0;
    bad.cols = 40;
    fam.expect_code(cuda::embed_cuda(out.get(), bad, dtok.get(), 1, env.stream), Code::InvalidArgument, "q8_0 cols 40");
  }
  fam.notes = "f32 f16 bf16 q8_0 int4/g32/g64/g128 nf4, vector + scalar paths, out-of-range ids";
  fam.summary();
}

// =================================================================================================
// rmsnorm
// =================================================================================================
void check_rmsnorm(Env& env) {
  Family fam{"rmsnorm", kTol.rmsnorm};
  // 8..1024: a warp per row; 1028, 4096, 8192: a block per row (registers hold the row);
  // 12288: a block per row that re-reads the part beyond 8 float4 per thread; 97, 1030: scalar.
  const std::vector<int64_t> dims = {8, 64, 97, 1024, 1028, 1030, 4096, 8192, 12288};
  for (int64_t dim : dims) {
    for (int64_t n : {1, 3, 17, 33}) {
      if (dim >= 8192 && n > 3) continue;  // keeps the emulated run short; shapes are covered
      for (int variant = 0; variant < 4; variant++) {
        // 0: random x in [-1, 1], w in [0.5, 1.5]; 1: position-encoded x, random w in [-1, 1];
        // 2: x scaled by 1e-3 (eps matters), eps 1e-6; 3: misaligned x and out (scalar path), x in [-30, 30]
        const int64_t offset = variant == 3 ? 1 : 0;
        const float eps = variant == 2 ? 1e-6f : 1e-5f;
        std::vector<float> x = variant == 1 ? position_encoded(n, dim) : check::random_floats(env.rng, size_t(n * dim));
        if (variant == 2)
          for (auto& v : x) v *= 1e-3f;
        if (variant == 3)
          for (auto& v : x) v *= 30.0f;
        const std::vector<float> w = variant == 0 ? check::random_floats(env.rng, size_t(dim), 0.5f, 1.5f)
                                                  : check::random_floats(env.rng, size_t(dim));
        std::vector<float> ref(x.size());
        rmsnorm_cpu(env.ctx, ref.data(), x.data(), w.data(), n, dim, eps);
        std::vector<float> xpad(static_cast<size_t>(offset), 0.0f);
        xpad.insert(xpad.end(), x.begin(), x.end());
        DeviceArray<float> dx(xpad), dw(w), out(xpad.size());
        static const char* kVariant[] = {"random", "position-encoded", "tiny x eps 1e-6", "x+1 out+1 (scalar path)"};
        const std::string what = sz("dim", dim) + sz("n", n) + kVariant[variant];
        if (!run_op(env, fam, what, [&] {
              return cuda::rmsnorm_cuda(out.get() + offset, dx.get() + offset, dw.get(), n, dim, eps, env.stream);
            }))
          continue;
        const std::vector<float> got = out.download();
        fam.check(what, got.data() + offset, ref.data(), ref.size());
      }
    }
  }
  // In place (out == x), both kernels.
  for (int64_t dim : {64, 4096}) {
    const int64_t n = 3;
    const std::vector<float> x = check::random_floats(env.rng, size_t(n * dim));
    const std::vector<float> w = check::random_floats(env.rng, size_t(dim));
    std::vector<float> ref(x.size());
    rmsnorm_cpu(env.ctx, ref.data(), x.data(), w.data(), n, dim, 1e-5f);
    DeviceArray<float> dx(x), dw(w);
    const std::string what = sz("dim", dim) + sz("n", n) + "in place (out == x)";
    if (run_op(env, fam, what,
               [&] { return cuda::rmsnorm_cuda(dx.get(), dx.get(), dw.get(), n, dim, 1e-5f, env.stream); })) {
      fam.check(what, dx.download(), ref);
    }
  }
  {
    DeviceArray<float> a(64), w(64);
    fam.expect_code(cuda::rmsnorm_cuda(a.get(), a.get(), w.get(), 0, 64, 1e-5f, env.stream), Code::InvalidArgument,
                    "n = 0");
    fam.expect_code(cuda::rmsnorm_cuda(a.get(), a.get(), w.get(), 1, -64, 1e-5f, env.stream), Code::InvalidArgument,
                    "dim = -64");
  }
  fam.summary();
}

// =================================================================================================
// rope
// =================================================================================================

// The backend's table for positions 0 .. capacity - 1: [capacity][rope_dim / 2][cos, sin], angles in
// double, stored in f32 (as the CPU backend builds its per-step tables).
std::vector<float> rope_table(int64_t capacity, int64_t rope_dim, double theta) {
  const int64_t pairs = rope_dim / 2;
  std::vector<float> t(static_cast<size_t>(capacity * pairs * 2));
  for (int64_t p = 0; p < pairs; p++) {
    const double freq = std::pow(theta, -2.0 * double(p) / double(rope_dim));
    for (int64_t pos = 0; pos < capacity; pos++) {
      const double angle = double(pos) * freq;
      t[size_t((pos * pairs + p) * 2)] = float(std::cos(angle));
      t[size_t((pos * pairs + p) * 2 + 1)] = float(std::sin(angle));
    }
  }
  return t;
}

void check_rope(Env& env) {
  Family fam{"rope", kTol.rope};
  const int64_t capacity = 4096;
  struct Shape {
    int64_t head_dim, rope_dim;
  };
  // rope_dim < head_dim: 64 of 128, 32 of 64, 6 of 8 (scalar path for both pairings), 12 of 64
  // (interleaved vector, half scalar).
  const std::vector<Shape> shapes = {{8, 8}, {64, 64}, {128, 128}, {128, 64}, {64, 32}, {8, 6}, {64, 12}};
  std::uniform_int_distribution<int32_t> posd(0, int32_t(capacity - 40));
  int case_index = 0;
  for (const Shape& s : shapes) {
    DeviceArray<float> dtable(rope_table(capacity, s.rope_dim, 10000.0));
    const std::vector<float> table = dtable.download();
    for (int64_t n_heads : {1, 3, 8, 32}) {
      for (int64_t n : {1, 3, 17, 33}) {
        for (RopePairing pairing : {RopePairing::Interleaved, RopePairing::Half}) {
          for (int init = 0; init < 2; init++) {
            case_index++;
            const int64_t width = n_heads * s.head_dim;
            // positions: random, the top of the table (up to 4095), and 0
            int32_t pos0 = posd(env.rng);
            if (case_index % 5 == 0) pos0 = int32_t(capacity - n);
            if (case_index % 7 == 0) pos0 = 0;
            const int64_t offset = case_index % 6 == 0 ? 1 : 0;  // misaligned x: the scalar path
            const std::vector<float> x = init == 0 ? position_encoded(n, width)
                                                   : check::random_floats(env.rng, size_t(n * width), -3.0f, 3.0f);
            std::vector<float> ref = x;
            const float* cs = table.data() + int64_t(pos0) * s.rope_dim;  // rows pos0 .. pos0 + n - 1
            rope_cpu(env.ctx, ref.data(), n, n_heads, s.head_dim, s.rope_dim, pairing, cs);
            std::vector<float> xpad(static_cast<size_t>(offset), 0.0f);
            xpad.insert(xpad.end(), x.begin(), x.end());
            DeviceArray<float> dx(xpad);
            DeviceArray<int32_t> dpos(std::vector<int32_t>{pos0});
            const std::string what = sz("head_dim", s.head_dim) + sz("rope_dim", s.rope_dim) + sz("n_heads", n_heads) +
                                     sz("n", n) + sz("pos", pos0) +
                                     (pairing == RopePairing::Interleaved ? "interleaved " : "half ") +
                                     (init == 0 ? "position-encoded" : "random") + (offset ? " x+1 (scalar path)" : "");
            if (!run_op(env, fam, what, [&] {
                  return cuda::rope_cuda(dx.get() + offset, n, n_heads, s.head_dim, s.rope_dim, pairing, dtable.get(),
                                         dpos.get(), env.stream);
                }))
              continue;
            const std::vector<float> got = dx.download();
            fam.check(what, got.data() + offset, ref.data(), ref.size());
          }
        }
      }
    }
  }
  {
    DeviceArray<float> x(128), t(128);
    DeviceArray<int32_t> p(std::vector<int32_t>{0});
    const auto rope = [&](int64_t n, int64_t hd, int64_t rd, RopePairing pr) {
      return cuda::rope_cuda(x.get(), n, 1, hd, rd, pr, t.get(), p.get(), env.stream);
    };
    fam.expect_code(rope(0, 64, 64, RopePairing::Half), Code::InvalidArgument, "n = 0");
    fam.expect_code(rope(1, 64, 63, RopePairing::Half), Code::InvalidArgument, "rope_dim 63 (odd)");
    fam.expect_code(rope(1, 64, 66, RopePairing::Half), Code::InvalidArgument, "rope_dim 66 > head_dim 64");
    fam.expect_code(rope(1, 64, 64, static_cast<RopePairing>(5)), Code::Unsupported, "pairing 5");
  }
  fam.summary();
}

// =================================================================================================
// kv_append
// =================================================================================================

// Host images of one layer's cache (guard rows before and after): what the device cache must hold.
struct HostCache {
  DType dtype;
  int64_t kv_dim, capacity, guard;
  std::vector<uint8_t> k, v;

  size_t elem() const { return dtype == DType::F32 ? 4 : 2; }
  HostCache(DType dt, int64_t d, int64_t cap, int64_t g) : dtype(dt), kv_dim(d), capacity(cap), guard(g) {
    const size_t bytes = size_t((cap + 2 * g) * d) * elem();
    k.resize(bytes);
    v.resize(bytes);
    // every slot starts as a recognizable value: -(1000 + row) (row counts guard rows too)
    for (int64_t r = 0; r < cap + 2 * g; r++)
      for (int64_t j = 0; j < d; j++) {
        set(k, r * d + j, -(1000.0f + float(r)));
        set(v, r * d + j, -(2000.0f + float(r)));
      }
  }
  void set(std::vector<uint8_t>& b, int64_t i, float f) const {
    if (dtype == DType::F32) {
      std::memcpy(b.data() + 4 * i, &f, 4);
    } else {
      const uint16_t h = dtype == DType::F16 ? f32_to_f16(f) : f32_to_bf16(f);
      std::memcpy(b.data() + 2 * i, &h, 2);
    }
  }
  float get(const std::vector<uint8_t>& b, int64_t i) const {
    if (dtype == DType::F32) {
      float f;
      std::memcpy(&f, b.data() + 4 * i, 4);
      return f;
    }
    uint16_t h;
    std::memcpy(&h, b.data() + 2 * i, 2);
    return dtype == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
  }
  std::vector<float> floats(const std::vector<uint8_t>& b) const {
    std::vector<float> f(b.size() / elem());
    for (size_t i = 0; i < f.size(); i++) f[i] = get(b, int64_t(i));
    return f;
  }
  // The reference append of rows pos .. pos + n - 1 (rows outside [0, capacity) skipped, as the
  // kernel guards). F32 and F16 through kv_append_cpu; the CPU backend has no BF16 cache, so BF16
  // is kv_append_cpu's F32 result rounded by core/half.h f32_to_bf16.
  void append_reference(const CpuContext& ctx, const float* kin, const float* vin, int64_t n, int64_t pos) {
    const int64_t i0 = std::max<int64_t>(0, -pos), i1 = std::min<int64_t>(n, capacity - pos);
    if (i1 <= i0) return;
    const int64_t rows = i1 - i0;
    const size_t base = size_t(guard * kv_dim) * elem();
    if (dtype != DType::BF16) {
      KvLayer layer;
      layer.dtype = dtype;
      layer.kv_dim = kv_dim;
      layer.capacity = capacity;
      layer.k = k.data() + base;
      layer.v = v.data() + base;
      kv_append_cpu(ctx, layer, kin + i0 * kv_dim, vin + i0 * kv_dim, rows, pos + i0);
      return;
    }
    std::vector<float> kf(static_cast<size_t>(capacity * kv_dim)), vf(kf.size());
    KvLayer layer;
    layer.dtype = DType::F32;
    layer.kv_dim = kv_dim;
    layer.capacity = capacity;
    layer.k = kf.data();
    layer.v = vf.data();
    kv_append_cpu(ctx, layer, kin + i0 * kv_dim, vin + i0 * kv_dim, rows, pos + i0);
    for (int64_t r = pos + i0; r < pos + i1; r++)
      for (int64_t j = 0; j < kv_dim; j++) {
        set(k, (guard + r) * kv_dim + j, kf[size_t(r * kv_dim + j)]);
        set(v, (guard + r) * kv_dim + j, vf[size_t(r * kv_dim + j)]);
      }
  }
};

struct DeviceCache {
  DeviceArray<uint8_t> k, v;
  KvLayer layer;
  explicit DeviceCache(const HostCache& h) : k(h.k), v(h.v) {
    const size_t base = size_t(h.guard * h.kv_dim) * h.elem();
    layer.dtype = h.dtype;
    layer.kv_dim = h.kv_dim;
    layer.capacity = h.capacity;
    layer.k = k.get() + base;
    layer.v = v.get() + base;
  }
};

void check_kv_append(Env& env) {
  Family fam{"kv_append", kTol.kv_append};
  const int64_t guard = 2;
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    for (int64_t kv_dim : {8, 64, 97, 4096}) {
      const int64_t capacity = kv_dim == 4096 ? 64 : 4096;
      std::uniform_int_distribution<int32_t> posd(0, int32_t(capacity - 33));
      int case_index = 0;
      for (int64_t n : {1, 3, 17, 33}) {
        for (int init = 0; init < 2; init++) {
          case_index++;
          int32_t pos0 = posd(env.rng);
          if (case_index == 3) pos0 = int32_t(capacity - n);  // the last rows
          if (case_index == 5) pos0 = 0;
          const int64_t offset = case_index == 4 ? 1 : 0;  // misaligned k and v: the scalar path
          HostCache host(dt, kv_dim, capacity, guard);
          DeviceCache dev(host);
          const std::vector<float> k = init == 0 ? position_encoded(n, kv_dim)
                                                 : check::random_floats(env.rng, size_t(n * kv_dim), -8.0f, 8.0f);
          std::vector<float> v = check::random_floats(env.rng, size_t(n * kv_dim), -8.0f, 8.0f);
          if (init == 0)
            for (auto& x : v) x = -x;
          host.append_reference(env.ctx, k.data(), v.data(), n, pos0);
          std::vector<float> kpad(static_cast<size_t>(offset), 0.0f), vpad(static_cast<size_t>(offset), 0.0f);
          kpad.insert(kpad.end(), k.begin(), k.end());
          vpad.insert(vpad.end(), v.begin(), v.end());
          DeviceArray<float> dk(kpad), dv(vpad);
          DeviceArray<int32_t> dpos(std::vector<int32_t>{pos0});
          const std::string what = std::string(dtype_name(dt)) + " " + sz("kv_dim", kv_dim) + sz("n", n) +
                                   sz("pos", pos0) + (init == 0 ? "position-encoded" : "random") +
                                   (offset ? " k+1 v+1 (scalar path)" : "");
          if (!run_op(env, fam, what, [&] {
                return cuda::kv_append_cuda(dev.layer, dk.get() + offset, dv.get() + offset, n, dpos.get(), env.stream);
              }))
            continue;
          // whole cache images, guard rows included: nothing else may change
          fam.check(what + " (k)", host.floats(dev.k.download()), host.floats(host.k));
          fam.check(what + " (v)", host.floats(dev.v.download()), host.floats(host.v));
        }
      }
    }
  }
  // Rows past the capacity, or before 0, are not written (guard rows stay as they were).
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    const int64_t kv_dim = 64, capacity = 40;
    for (int32_t pos0 : {38, -2, 40}) {
      const int64_t n = 5;
      HostCache host(dt, kv_dim, capacity, guard);
      DeviceCache dev(host);
      const std::vector<float> k = position_encoded(n, kv_dim), v = check::random_floats(env.rng, size_t(n * kv_dim));
      host.append_reference(env.ctx, k.data(), v.data(), n, pos0);
      DeviceArray<float> dk(k), dv(v);
      DeviceArray<int32_t> dpos(std::vector<int32_t>{pos0});
      const std::string what = std::string(dtype_name(dt)) + " " + sz("capacity", capacity) + sz("n", n) +
                               sz("pos", pos0) + "rows outside the cache skipped";
      if (!run_op(env, fam, what,
                  [&] { return cuda::kv_append_cuda(dev.layer, dk.get(), dv.get(), n, dpos.get(), env.stream); })) {
        continue;
      }
      fam.check(what + " (k)", host.floats(dev.k.download()), host.floats(host.k));
      fam.check(what + " (v)", host.floats(dev.v.download()), host.floats(host.v));
    }
  }
  // Rounding edge cases, compared as bit patterns: halfway cases (ties to even), overflow to inf,
  // f16 subnormals and underflow to zero, -0, inf.
  {
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<float> special = {
        1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f,  // f16 / bf16 ties
        65504.0f, 65519.0f, 65520.0f, 1e6f, -1e6f, 3.0e38f, inf, -inf,           // overflow
        0x1p-24f, 0x1p-25f, 3 * 0x1p-25f, 0x1p-26f, 1e-7f, -1e-7f, 6.1e-5f, 1e-40f,  // subnormals
        0.0f, -0.0f, 1.0f + 0x1p-12f + 0x1p-20f, -2.5f,
    };
    while (special.size() % 8 != 0) special.push_back(0.5f);
    const int64_t kv_dim = int64_t(special.size()), n = 1, capacity = 4;
    for (DType dt : {DType::F16, DType::BF16}) {
      HostCache host(dt, kv_dim, capacity, 0);
      DeviceCache dev(host);
      std::vector<uint16_t> ref(static_cast<size_t>(kv_dim));
      for (size_t j = 0; j < special.size(); j++) {
        ref[j] = dt == DType::F16 ? f32_to_f16(special[j]) : f32_to_bf16(special[j]);
      }
      DeviceArray<float> dk(special), dv(special);
      DeviceArray<int32_t> dpos(std::vector<int32_t>{2});
      const std::string what = std::string(dtype_name(dt)) + " rounding edge cases (bits)";
      if (!run_op(env, fam, what,
                  [&] { return cuda::kv_append_cuda(dev.layer, dk.get(), dv.get(), n, dpos.get(), env.stream); })) {
        continue;
      }
      const std::vector<uint8_t> kb = dev.k.download();
      std::vector<uint16_t> got(static_cast<size_t>(kv_dim));
      std::memcpy(got.data(), kb.data() + 2 * 2 * kv_dim, got.size() * 2);
      fam.check_bits(what, got, ref);
    }
  }
  {
    HostCache host(DType::F32, 8, 4, 0);
    DeviceCache dev(host);
    DeviceArray<float> k(8);
    DeviceArray<int32_t> p(std::vector<int32_t>{0});
    fam.expect_code(cuda::kv_append_cuda(dev.layer, k.get(), k.get(), 0, p.get(), env.stream), Code::InvalidArgument,
                    "n = 0");
    KvLayer bad = dev.layer;
    bad.capacity = 0;
    fam.expect_code(cuda::kv_append_cuda(bad, k.get(), k.get(), 1, p.get(), env.stream), Code::InvalidArgument,
                    "capacity 0");
    bad = dev.layer;
    bad.dtype = DType::Q8_0;
    fam.expect_code(cuda::kv_append_cuda(bad, k.get(), k.get(), 1, p.get(), env.stream), Code::Unsupported,
                    "q8_0 cache");
  }
  fam.notes = "f32 f16 bf16 (bf16 reference: kv_append_cpu f32 + f32_to_bf16)";
  fam.summary();
}

// =================================================================================================
// Graph replay: rope + kv_append captured once, replayed at two positions set in device memory.
// =================================================================================================
void check_graph_replay(Env& env) {
  Family fam{"replay", Tolerance{0.0, 0.0}};
  const int64_t n_heads = 4, head_dim = 64, kv_dim = n_heads * head_dim, capacity = 4096;
  DeviceArray<float> dtable(rope_table(capacity, head_dim, 10000.0));
  const std::vector<float> table = dtable.download();
  const std::vector<float> x = check::random_floats(env.rng, size_t(kv_dim));
  const std::vector<float> v = check::random_floats(env.rng, size_t(kv_dim));
  DeviceArray<float> dx0(x), dx(x.size()), dv(v);
  DeviceArray<int32_t> dpos(std::vector<int32_t>{0});
  HostCache host(DType::F16, kv_dim, capacity, 0);
  DeviceCache dev(host);

  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  bool ok = cudaStreamBeginCapture(env.stream, cudaStreamCaptureModeGlobal) == cudaSuccess;
  if (ok) {
    ok = cudaMemcpyAsync(dx.get(), dx0.get(), x.size() * 4, cudaMemcpyDeviceToDevice, env.stream) == cudaSuccess;
    ok = ok && fam.expect_ok(cuda::rope_cuda(dx.get(), 1, n_heads, head_dim, head_dim, RopePairing::Interleaved,
                                             dtable.get(), dpos.get(), env.stream),
                             "capture rope");
    ok = ok && fam.expect_ok(cuda::kv_append_cuda(dev.layer, dx.get(), dv.get(), 1, dpos.get(), env.stream),
                             "capture kv_append");
    const bool ended = cudaStreamEndCapture(env.stream, &graph) == cudaSuccess;
    ok = ok && ended && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
  }
  if (!ok) {
    fam.fail(std::string("graph capture failed: ") + cudaGetErrorString(cudaGetLastError()));
  } else {
    for (int32_t p : {5, 4000, 17}) {
      cudaMemcpy(dpos.get(), &p, 4, cudaMemcpyHostToDevice);
      const std::string what = "rope+kv_append graph replay at " + sz("pos", p);
      if (cudaGraphLaunch(exec, env.stream) != cudaSuccess || cudaStreamSynchronize(env.stream) != cudaSuccess) {
        fam.fail(what + ": " + cudaGetErrorString(cudaGetLastError()));
        continue;
      }
      std::vector<float> ref = x;
      rope_cpu(env.ctx, ref.data(), 1, n_heads, head_dim, head_dim, RopePairing::Interleaved,
               table.data() + int64_t(p) * head_dim);
      fam.check(what + " (x)", dx.download(), ref);
      host.append_reference(env.ctx, ref.data(), v.data(), 1, p);
      fam.check(what + " (cache k)", host.floats(dev.k.download()), host.floats(host.k));
      fam.check(what + " (cache v)", host.floats(dev.v.download()), host.floats(host.v));
    }
  }
  if (exec) cudaGraphExecDestroy(exec);
  if (graph) cudaGraphDestroy(graph);
  fam.summary();
}

// =================================================================================================
// swiglu and add
// =================================================================================================
void check_swiglu_add(Env& env) {
  Family sw{"swiglu", kTol.swiglu}, ad{"add", kTol.add};
  const std::vector<float> big = {88.0f, -88.0f, 88.8f, -88.8f, 89.0f, -89.0f, 100.0f, -100.0f, 1e30f, -1e30f,
                                  1e38f, -1e38f, 0.0f, -0.0f,   1e-30f, -1e-30f, 20.0f, -20.0f};
  const std::vector<int64_t> counts = {1, 3, 17, 33, 97, 4096, 4096 * 3 + 1, 11008 * 2 + 3};
  for (int64_t count : counts) {
    for (int64_t offset : {0, 1}) {  // offset 1: all three pointers misaligned: the scalar path
      std::vector<float> a = check::random_floats(env.rng, size_t(count), -12.0f, 12.0f);
      std::vector<float> b = check::random_floats(env.rng, size_t(count), -3.0f, 3.0f);
      for (size_t i = 0; i < big.size() && i < a.size(); i++) a[(i * 7919) % a.size()] = big[i];  // large |gate|
      std::vector<float> apad(static_cast<size_t>(offset), 0.0f), bpad(static_cast<size_t>(offset), 0.0f);
      apad.insert(apad.end(), a.begin(), a.end());
      bpad.insert(bpad.end(), b.begin(), b.end());
      DeviceArray<float> da(apad), db(bpad), out(apad.size());
      const std::string what = sz("count", count) + (offset ? "pointers+1 (scalar path)" : "aligned");
      std::vector<float> ref(static_cast<size_t>(count));
      swiglu_cpu(env.ctx, ref.data(), a.data(), b.data(), count);
      float* o = out.get() + offset;
      const float* pa = da.get() + offset;
      const float* pb = db.get() + offset;
      if (run_op(env, sw, what, [&] { return cuda::swiglu_cuda(o, pa, pb, count, env.stream); })) {
        const std::vector<float> got = out.download();
        sw.check(what, got.data() + offset, ref.data(), ref.size());
      }
      add_cpu(env.ctx, ref.data(), a.data(), b.data(), count);
      if (run_op(env, ad, what, [&] { return cuda::add_cuda(o, pa, pb, count, env.stream); })) {
        const std::vector<float> got = out.download();
        ad.check(what, got.data() + offset, ref.data(), ref.size());
      }
    }
  }
  // Aliasing: out == gate, out == up; out == a, out == b, out == a == b.
  for (int64_t count : {33, 4096 * 3 + 1}) {
    const std::vector<float> a = check::random_floats(env.rng, size_t(count), -12.0f, 12.0f);
    const std::vector<float> b = check::random_floats(env.rng, size_t(count), -3.0f, 3.0f);
    std::vector<float> ref(static_cast<size_t>(count));
    swiglu_cpu(env.ctx, ref.data(), a.data(), b.data(), count);
    for (int which = 0; which < 2; which++) {
      DeviceArray<float> da(a), db(b);
      float* out = which == 0 ? da.get() : db.get();
      const std::string what = sz("count", count) + (which == 0 ? "out == gate" : "out == up");
      if (run_op(env, sw, what, [&] { return cuda::swiglu_cuda(out, da.get(), db.get(), count, env.stream); }))
        sw.check(what, which == 0 ? da.download() : db.download(), ref);
    }
    add_cpu(env.ctx, ref.data(), a.data(), b.data(), count);
    for (int which = 0; which < 2; which++) {
      DeviceArray<float> da(a), db(b);
      float* out = which == 0 ? da.get() : db.get();
      const std::string what = sz("count", count) + (which == 0 ? "out == a" : "out == b");
      if (run_op(env, ad, what, [&] { return cuda::add_cuda(out, da.get(), db.get(), count, env.stream); }))
        ad.check(what, which == 0 ? da.download() : db.download(), ref);
    }
    add_cpu(env.ctx, ref.data(), a.data(), a.data(), count);
    DeviceArray<float> da(a);
    const std::string what = sz("count", count) + "out == a == b";
    if (run_op(env, ad, what, [&] { return cuda::add_cuda(da.get(), da.get(), da.get(), count, env.stream); }))
      ad.check(what, da.download(), ref);
  }
  {
    DeviceArray<float> a(8);
    sw.expect_code(cuda::swiglu_cuda(a.get(), a.get(), a.get(), 0, env.stream), Code::InvalidArgument, "count = 0");
    ad.expect_code(cuda::add_cuda(a.get(), a.get(), a.get(), -1, env.stream), Code::InvalidArgument, "count = -1");
  }
  sw.notes = "gate includes +-88..1e38, +-0: no NaN/inf";
  sw.summary();
  ad.summary();
}

}  // namespace
}  // namespace lc

int main() {
  const char* name = "cuda_check_elementwise";
  if (!lc::check::have_device(name)) return 0;
  lc::Env env;
  if (cudaStreamCreate(&env.stream) != cudaSuccess) {
    std::printf("FATAL: cudaStreamCreate failed\n");
    return 2;
  }
  lc::check_embed(env);
  lc::check_rmsnorm(env);
  lc::check_rope(env);
  lc::check_kv_append(env);
  lc::check_graph_replay(env);
  lc::check_swiglu_add(env);
  cudaStreamDestroy(env.stream);
  return lc::check::finish(name);
}
