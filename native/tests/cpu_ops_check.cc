// cpu_ops_check: every op of every fast CPU tier (generic, avx2, avx512 where the CPU has
// them) against the reference kernels (native/cpu/ops/), on random data of awkward sizes, with
// 1 and 3 threads. One line per case; on a failure the first mismatching pairs, the worst
// index and the tolerance used (llm.c style); exit status 1 on any failure.
//
//   cpu_ops_check            run all cases
//   cpu_ops_check --verbose  also print every (tier, threads) result of every case
//   cpu_ops_check --bench    check, then time matmul 4096 x 4096 per dtype and tier
//                            (n = 1: GB/s of weight bytes; n = 64: GFLOP/s) against a
//                            measured memory bandwidth; numbers for people, never asserted
//
// Tolerances (one table, TOLERANCES below): an output passes when
//   |got - ref| <= atol + rtol * scale + k_sigma * sigma
// where scale is |ref| for elementwise ops and sum_c |w_c x_c| for matmul (a dot product's
// rounding error grows with that sum, not with the possibly cancelled result), and sigma is
// the standard deviation of the error that quantizing activations to int8 introduces (the
// avx2 / avx512 Q8_0 and INT4 matmul quantize each activation row to blocks of 32 with
// d = absmax / 127; each value moves by at most d/2, uniformly: sigma^2 = sum_c w_c^2 d_b(c)^2 / 12).
// That error is ~1e-2 of the output for random data, a property of the method, not of a bug;
// an index or layout bug moves outputs by O(scale) and fails by orders of magnitude.
// Ops that do the reference's arithmetic in the same order (embed, rope, kv_append, add) must
// match bit for bit.
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/dequant.h"
#include "core/half.h"
#include "core/nf4.h"
#include "core/thread_pool.h"
#include "cpu/kernels.h"

using namespace lc;

namespace {

// ---- random data ------------------------------------------------------------------------

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint32_t next() {  // xorshift64*
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return uint32_t((s * 0x2545F4914F6CDD1Dull) >> 32);
  }
  float uniform(float lo, float hi) { return lo + (hi - lo) * float(next() >> 8) * (1.0f / 16777216.0f); }
};

std::vector<float> random_floats(int64_t count, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = rng.uniform(lo, hi);
  return v;
}

// Position-encoding values (ThunderKittens style): a function of the index that never
// repeats in a short window, so a wrong stride gives a clearly wrong number.
std::vector<float> position_floats(int64_t rows, int64_t cols) {
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) v[size_t(r * cols + c)] = float(std::sin(0.37 * double(r) + 0.0113 * double(c) + 0.5));
  return v;
}

// ---- weights in the storage layouts of core/dtype.h -------------------------------------

enum class Int4Style { Q4_0, MinMax };

struct HostWeight {
  std::vector<uint8_t> bytes;
  Weight w;
  std::string label;
};

// Q8_0 planar: codes int8 [rows][cols], then f16 scales [rows][cols/32]; scale = absmax / 127.
void quantize_q8_0(const float* src, int64_t rows, int64_t cols, uint8_t* dst) {
  int8_t* codes = reinterpret_cast<int8_t*>(dst);
  uint16_t* scales = reinterpret_cast<uint16_t*>(dst + rows * cols);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t b = 0; b < cols / 32; b++) {
      const float* x = src + r * cols + 32 * b;
      float amax = 0.0f;
      for (int j = 0; j < 32; j++) amax = std::max(amax, std::fabs(x[j]));
      const float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
      for (int j = 0; j < 32; j++) codes[r * cols + 32 * b + j] = int8_t(std::lround(x[j] * id));
      scales[r * (cols / 32) + b] = f32_to_f16(d);
    }
}

// INT4 planar: codes [rows][cols/2] (in a group of G: byte j = q[j] | q[j + G/2] << 4), then
// {scale, min} f16 pairs [rows][cols/G]. Q4_0 style: d = (value of largest magnitude) / -8,
// scale = d, min = -8 d; MinMax: min = smallest, scale = (largest - smallest) / 15.
void quantize_int4(const float* src, int64_t rows, int64_t cols, int64_t group, Int4Style style, uint8_t* dst) {
  uint8_t* codes = dst;
  uint16_t* params = reinterpret_cast<uint16_t*>(dst + rows * cols / 2);
  std::vector<int> q(static_cast<size_t>(group));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t g = 0; g < cols / group; g++) {
      const float* x = src + r * cols + g * group;
      uint16_t scale_h, min_h;
      if (style == Int4Style::Q4_0) {
        float amax = 0.0f, max = 0.0f;
        for (int64_t j = 0; j < group; j++)
          if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            max = x[j];
          }
        scale_h = f32_to_f16(max / -8.0f);
        min_h = f32_to_f16(-8.0f * f16_to_f32(scale_h));
      } else {
        float lo = x[0], hi = x[0];
        for (int64_t j = 0; j < group; j++) {
          lo = std::min(lo, x[j]);
          hi = std::max(hi, x[j]);
        }
        scale_h = f32_to_f16((hi - lo) / 15.0f);
        min_h = f32_to_f16(lo);
      }
      const float scale = f16_to_f32(scale_h), min = f16_to_f32(min_h);
      for (int64_t j = 0; j < group; j++) {
        const long v = scale != 0.0f ? std::lround((x[j] - min) / scale) : 0;
        q[size_t(j)] = int(std::min(15L, std::max(0L, v)));
      }
      uint8_t* out = codes + r * cols / 2 + g * group / 2;
      for (int64_t j = 0; j < group / 2; j++) out[j] = uint8_t(q[size_t(j)] | (q[size_t(j + group / 2)] << 4));
      params[(r * (cols / group) + g) * 2] = scale_h;
      params[(r * (cols / group) + g) * 2 + 1] = min_h;
    }
}

struct WeightKind {
  DType dtype;
  int64_t group;  // INT4 only
  Int4Style style;
  std::string name;
};

const std::vector<WeightKind>& weight_kinds() {
  static const std::vector<WeightKind> kinds = {
      {DType::F32, 0, Int4Style::Q4_0, "f32"},
      {DType::F16, 0, Int4Style::Q4_0, "f16"},
      {DType::BF16, 0, Int4Style::Q4_0, "bf16"},
      {DType::Q8_0, 32, Int4Style::Q4_0, "q8_0"},
      {DType::INT4, 32, Int4Style::Q4_0, "int4g32(q4_0)"},
      {DType::INT4, 32, Int4Style::MinMax, "int4g32"},
      {DType::INT4, 64, Int4Style::MinMax, "int4g64"},
      {DType::INT4, 128, Int4Style::Q4_0, "int4g128(q4_0)"},
      {DType::INT4, 128, Int4Style::MinMax, "int4g128"},
      {DType::NF4, 64, Int4Style::MinMax, "nf4"},
  };
  return kinds;
}

bool kind_fits(const WeightKind& k, int64_t cols) {
  if (k.dtype == DType::Q8_0) return cols % 32 == 0;
  if (k.dtype == DType::INT4) return cols % k.group == 0;
  if (k.dtype == DType::NF4) return cols % 64 == 0;
  return true;
}

void make_weight(HostWeight* hw, const WeightKind& k, int64_t rows, int64_t cols, const std::vector<float>& src) {
  const size_t nbytes = weight_bytes(k.dtype, rows, cols, k.group);
  hw->bytes.assign(nbytes + 64, 0);
  uint8_t* dst = hw->bytes.data();
  switch (k.dtype) {
    case DType::F32: std::memcpy(dst, src.data(), size_t(rows * cols) * 4); break;
    case DType::F16:
      for (int64_t i = 0; i < rows * cols; i++) reinterpret_cast<uint16_t*>(dst)[i] = f32_to_f16(src[size_t(i)]);
      break;
    case DType::BF16:
      for (int64_t i = 0; i < rows * cols; i++) reinterpret_cast<uint16_t*>(dst)[i] = f32_to_bf16(src[size_t(i)]);
      break;
    case DType::Q8_0: quantize_q8_0(src.data(), rows, cols, dst); break;
    case DType::INT4: quantize_int4(src.data(), rows, cols, k.group, k.style, dst); break;
    case DType::NF4:  // the engine's own encoder (core/nf4.cc): codes, then f32 scales
      for (int64_t r = 0; r < rows; r++) {
        quantize_row_nf4(dst + r * (cols / 2), reinterpret_cast<float*>(dst + rows * (cols / 2)) + r * (cols / 64),
                         src.data() + r * cols, cols);
      }
      break;
  }
  hw->w = Weight{k.dtype, rows, cols, k.dtype == DType::Q8_0 ? 32 : k.group, dst, nbytes};
  hw->label = k.name;
}

// ---- tiers, threads, scratch ------------------------------------------------------------

struct Tier {
  const CpuKernels* k;
};

std::vector<Tier> fast_tiers() {
  std::vector<Tier> t = {{&cpu_kernels_generic()}};
  if (const CpuKernels* k = cpu_kernels_avx2()) t.push_back({k});
  if (const CpuKernels* k = cpu_kernels_avx512()) t.push_back({k});
  return t;
}

const int kThreadCounts[] = {1, 3};  // 3: uneven splits on any machine

ThreadPool& pool_of(int n) {
  static std::unique_ptr<ThreadPool> pools[8];
  if (!pools[n]) pools[n] = std::make_unique<ThreadPool>(n);
  return *pools[n];
}

// Scratch of exactly scratch_bytes(shape), starting 8 bytes past a 64-byte boundary (the
// kernels must align it themselves), followed by a canary that must survive the call.
struct Scratch {
  std::vector<uint8_t> mem;
  CpuScratch s;
  size_t nbytes = 0;
  void prepare(const CpuKernels& k, const CpuScratchShape& shape) {
    nbytes = k.scratch_bytes(shape);
    mem.assign(nbytes + 64 + 8 + 256, 0xA5);
    uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(mem.data()) + 63) & ~uintptr_t(63)) + 8;
    s.data = base;
    s.nbytes = nbytes;
  }
  bool canary_ok() const {
    const uint8_t* end = s.data + nbytes;
    for (int i = 0; i < 256; i++)
      if (end[i] != 0xA5) return false;
    return true;
  }
};

// ---- comparison -------------------------------------------------------------------------

struct Tol {
  double atol, rtol, k_sigma;
};

// The tolerance table: (op, weight dtype / cache dtype, tier kind).
enum class TolKey {
  Exact,             // embed, kv_append, add: same arithmetic as the reference
  Rope,              // same arithmetic; a compiler may fuse a product and a sum (FMA): 1 ulp
  Rmsnorm,           // f32 sum of squares vs double
  MatmulFloat,       // f32 accumulation of exact products (all float dtypes; generic tier for all)
  MatmulQuantAct,    // avx2 / avx512 with Q8_0 / INT4: activations rounded to int8 blocks
  Attention,         // f32 scores, softmax (exp ~1e-7), weighted sum vs double
  Swiglu,            // exp ~1e-7 relative, one division
};

struct TolEntry {
  TolKey key;
  const char* name;
  Tol tol;
};

const TolEntry TOLERANCES[] = {
    {TolKey::Exact, "exact (bit-identical)", {0.0, 0.0, 0.0}},
    {TolKey::Rope, "rope (scale |x_a|+|x_b|)", {0.0, 1.2e-7, 0.0}},
    {TolKey::Rmsnorm, "rmsnorm", {1e-7, 2e-6, 0.0}},
    {TolKey::MatmulFloat, "matmul f32 accumulation", {1e-7, 2e-6, 0.0}},
    {TolKey::MatmulQuantAct, "matmul int8 activations", {1e-7, 2e-6, 6.0}},
    {TolKey::Attention, "attention", {1e-6, 1e-5, 0.0}},
    {TolKey::Swiglu, "swiglu", {1e-7, 2e-6, 0.0}},
};

const TolEntry& tol_of(TolKey key) {
  for (const TolEntry& e : TOLERANCES)
    if (e.key == key) return e;
  return TOLERANCES[0];
}

struct Outcome {
  double max_err = 0.0;
  double worst_ratio = 0.0;  // max err / tol (0 when tol is 0 and err is 0)
  int64_t worst = -1;
  bool ok = true;
};

// Compares got[count] with ref[count]; tol_i = atol + rtol * scale[i] + k_sigma * sigma[i]
// (scale / sigma may be null: |ref| / 0). Prints the first few faults under `label`.
Outcome compare(const float* got, const float* ref, int64_t count, const Tol& tol, const double* scale,
                const double* sigma, const std::string& label) {
  Outcome o;
  int faults = 0;
  for (int64_t i = 0; i < count; i++) {
    const double g = got[i], r = ref[i];
    const double err = std::fabs(g - r);
    const double s = scale != nullptr ? scale[i] : std::fabs(r);
    const double t = tol.atol + tol.rtol * s + (sigma != nullptr ? tol.k_sigma * sigma[i] : 0.0);
    const bool bad = !(err <= t) || std::isnan(g) != std::isnan(r);
    const double ratio = t > 0.0 ? err / t : (err > 0.0 ? INFINITY : 0.0);
    if (err > o.max_err || std::isnan(err)) o.max_err = std::isnan(err) ? INFINITY : err;
    if (ratio > o.worst_ratio || (bad && o.worst < 0)) {
      o.worst_ratio = ratio;
      o.worst = i;
    }
    if (bad) {
      if (faults < 10) {
        if (faults == 0) std::printf("    FAIL %s\n", label.c_str());
        std::printf("      [%" PRId64 "] got %.9g ref %.9g err %.3g tol %.3g\n", i, g, r, err, t);
      }
      faults++;
      o.ok = false;
    }
  }
  if (faults > 10) std::printf("      ... %d faults in all\n", faults);
  return o;
}

// Byte-exact comparison (kv caches).
Outcome compare_bytes(const uint8_t* got, const uint8_t* ref, size_t n, size_t elem, const std::string& label) {
  Outcome o;
  int faults = 0;
  for (size_t i = 0; i < n; i += elem) {
    if (std::memcmp(got + i, ref + i, elem) != 0) {
      if (faults < 10) {
        if (faults == 0) std::printf("    FAIL %s\n", label.c_str());
        uint32_t gv = 0, rv = 0;
        std::memcpy(&gv, got + i, elem);
        std::memcpy(&rv, ref + i, elem);
        std::printf("      [%zu] got 0x%08x ref 0x%08x\n", i / elem, gv, rv);
      }
      if (o.worst < 0) o.worst = int64_t(i / elem);
      faults++;
      o.ok = false;
      o.max_err = INFINITY;
    }
  }
  if (faults > 10) std::printf("      ... %d faults in all\n", faults);
  return o;
}

// ---- running a case on every tier -------------------------------------------------------

struct Totals {
  int cases = 0, runs = 0, failures = 0;
};
Totals g_totals;
bool g_verbose = false;

// One case: `run(k, ctx, out)` computes into out (count floats, already holding `init` values
// where the op reads them); `check(out, label)` compares with the reference result.
struct CaseRunner {
  std::string desc;
  CpuScratchShape shape;
  int64_t count;                                // output floats
  std::vector<float> init;                      // initial out contents (in-place ops), or empty
  std::function<void(const CpuKernels&, const CpuContext&, float*)> run;
  std::function<Outcome(const float*, const std::string&)> check;
  std::function<void()> before_each;            // reset state the op writes besides out (kv caches)

  void go() {
    g_totals.cases++;
    std::string line;
    bool all_ok = true;
    for (const Tier& t : fast_tiers()) {
      Outcome worst;
      for (int nth : kThreadCounts) {
        ThreadPool& pool = pool_of(nth);
        Scratch scratch;
        CpuScratchShape sh = shape;
        sh.n_threads = nth;
        scratch.prepare(*t.k, sh);
        CpuContext ctx;
        ctx.pool = &pool;
        ctx.scratch = scratch.s;
        std::vector<float> out(size_t(count) + 16, -12345.0f);  // 16 canary floats after
        if (!init.empty()) std::copy(init.begin(), init.end(), out.begin());
        if (before_each) before_each();
        run(*t.k, ctx, out.data());
        const std::string label = std::string(t.k->name) + " threads=" + std::to_string(nth) + " " + desc;
        Outcome o = check(out.data(), label);
        for (int i = 0; i < 16; i++)
          if (out[size_t(count + i)] != -12345.0f) {
            std::printf("    FAIL %s: wrote past the output (float %d after the end)\n", label.c_str(), i);
            o.ok = false;
            break;
          }
        if (!scratch.canary_ok()) {
          std::printf("    FAIL %s: wrote past its scratch (%zu bytes)\n", label.c_str(), scratch.nbytes);
          o.ok = false;
        }
        g_totals.runs++;
        if (!o.ok) g_totals.failures++;
        all_ok = all_ok && o.ok;
        if (g_verbose)
          std::printf("    %-7s thr=%d max_err %.3g at %" PRId64 " (err/tol %.3g)%s\n", t.k->name, nth, o.max_err, o.worst,
                      o.worst_ratio, o.ok ? "" : "  FAIL");
        if (!o.ok || o.worst_ratio >= worst.worst_ratio) {
          const bool keep_fail = !worst.ok;
          worst = o;
          if (keep_fail) worst.ok = false;
        }
      }
      char buf[160];
      std::snprintf(buf, sizeof buf, " | %s %.2g@%" PRId64 " r=%.2f%s", t.k->name, worst.max_err, worst.worst,
                    worst.worst_ratio, worst.ok ? "" : " FAIL");
      line += buf;
    }
    std::printf("%s %-58s%s\n", all_ok ? "ok  " : "FAIL", desc.c_str(), line.c_str());
  }
};

CpuContext reference_ctx() { return CpuContext{}; }

// ---- cases ------------------------------------------------------------------------------

void check_matmul(const WeightKind& kind, int64_t rows, int64_t cols, int64_t n, bool position_init, uint64_t seed) {
  HostWeight hw;
  make_weight(&hw, kind, rows, cols,
              position_init ? position_floats(rows, cols) : random_floats(rows * cols, seed));
  const std::vector<float> x = position_init ? position_floats(n, cols) : random_floats(n * cols, seed + 1);
  std::vector<float> ref(static_cast<size_t>(n * rows));
  cpu_kernels_reference().matmul(reference_ctx(), ref.data(), x.data(), hw.w, n);

  // scale = sum |w x|; sigma of the activation rounding (blocks of 32)
  std::vector<double> scale(size_t(n * rows)), sigma(size_t(n * rows), 0.0);
  std::vector<float> wrow(static_cast<size_t>(cols));
  const bool blocks = cols % 32 == 0;
  for (int64_t r = 0; r < rows; r++) {
    dequantize_row(wrow.data(), hw.w, r);
    for (int64_t i = 0; i < n; i++) {
      const float* xi = x.data() + i * cols;
      double s = 0.0, var = 0.0;
      for (int64_t c = 0; c < cols; c++) s += std::fabs(double(wrow[size_t(c)]) * xi[c]);
      if (blocks)
        for (int64_t b = 0; b < cols / 32; b++) {
          double amax = 0.0, w2 = 0.0;
          for (int j = 0; j < 32; j++) {
            amax = std::max(amax, std::fabs(double(xi[32 * b + j])));
            w2 += double(wrow[size_t(32 * b + j)]) * wrow[size_t(32 * b + j)];
          }
          const double d = amax / 127.0;
          var += w2 * d * d / 12.0;
        }
      scale[size_t(i * rows + r)] = s;
      sigma[size_t(i * rows + r)] = std::sqrt(var);
    }
  }
  const bool quant = kind.dtype == DType::Q8_0 || kind.dtype == DType::INT4;
  const bool simd_group = kind.dtype == DType::Q8_0 || kind.group == 32 || kind.group == 64 || kind.group == 128;

  CaseRunner c;
  char d[160];
  std::snprintf(d, sizeof d, "matmul %s rows=%" PRId64 " cols=%" PRId64 " n=%" PRId64 "%s", kind.name.c_str(), rows, cols, n,
                position_init ? " (position init)" : "");
  c.desc = d;
  c.shape.max_rows = n;
  c.shape.max_cols = cols;
  c.count = n * rows;
  c.run = [&](const CpuKernels& k, const CpuContext& ctx, float* out) { k.matmul(ctx, out, x.data(), hw.w, n); };
  c.check = [&](const float* got, const std::string& label) {
    const bool quant_act = quant && simd_group && label.rfind("generic", 0) != 0;
    const Tol& tol = tol_of(quant_act ? TolKey::MatmulQuantAct : TolKey::MatmulFloat).tol;
    return compare(got, ref.data(), n * rows, tol, scale.data(), sigma.data(), label);
  };
  c.go();
}

void check_embed(const WeightKind& kind, int64_t vocab, int64_t dim, int64_t n, uint64_t seed) {
  HostWeight hw;
  make_weight(&hw, kind, vocab, dim, random_floats(vocab * dim, seed));
  Rng rng(seed + 7);
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (auto& t : tokens) t = int32_t(rng.next() % uint32_t(vocab));
  tokens[0] = int32_t(vocab - 1);
  std::vector<float> ref(static_cast<size_t>(n * dim));
  cpu_kernels_reference().embed(reference_ctx(), ref.data(), hw.w, tokens.data(), n);
  CaseRunner c;
  c.desc = "embed " + kind.name + " vocab=" + std::to_string(vocab) + " dim=" + std::to_string(dim) +
           " n=" + std::to_string(n);
  c.count = n * dim;
  c.shape.max_rows = n;
  c.shape.max_cols = dim;
  c.run = [&](const CpuKernels& k, const CpuContext& ctx, float* out) { k.embed(ctx, out, hw.w, tokens.data(), n); };
  c.check = [&](const float* got, const std::string& label) {
    return compare(got, ref.data(), n * dim, tol_of(TolKey::Exact).tol, nullptr, nullptr, label);
  };
  c.go();
}

void check_rmsnorm(int64_t n, int64_t dim, uint64_t seed) {
  const std::vector<float> x = random_floats(n * dim, seed, -3.0f, 3.0f);
  const std::vector<float> w = random_floats(dim, seed + 1, 0.5f, 1.5f);
  std::vector<float> ref(static_cast<size_t>(n * dim));
  cpu_kernels_reference().rmsnorm(reference_ctx(), ref.data(), x.data(), w.data(), n, dim, 1e-5f);
  CaseRunner c;
  c.desc = "rmsnorm n=" + std::to_string(n) + " dim=" + std::to_string(dim);
  c.count = n * dim;
  c.run = [&](const CpuKernels& k, const CpuContext& ctx, float* out) {
    k.rmsnorm(ctx, out, x.data(), w.data(), n, dim, 1e-5f);
  };
  c.check = [&](const float* got, const std::string& label) {
    return compare(got, ref.data(), n * dim, tol_of(TolKey::Rmsnorm).tol, nullptr, nullptr, label);
  };
  c.go();
}

void check_rope(int64_t n, int64_t n_heads, int64_t head_dim, int64_t rope_dim, RopePairing pairing, uint64_t seed) {
  const std::vector<float> x = random_floats(n * n_heads * head_dim, seed, -2.0f, 2.0f);
  std::vector<float> cs(static_cast<size_t>(n * rope_dim));
  for (int64_t i = 0; i < n; i++)
    for (int64_t p = 0; p < rope_dim / 2; p++) {
      const double pos = double(17 + 5 * i);
      const double angle = pos * std::pow(10000.0, -2.0 * double(p) / double(rope_dim));
      cs[size_t(i * rope_dim + 2 * p)] = float(std::cos(angle));
      cs[size_t(i * rope_dim + 2 * p + 1)] = float(std::sin(angle));
    }
  std::vector<float> ref = x;
  cpu_kernels_reference().rope(reference_ctx(), ref.data(), n, n_heads, head_dim, rope_dim, pairing, cs.data());
  CaseRunner c;
  c.desc = std::string("rope ") + (pairing == RopePairing::Interleaved ? "interleaved" : "half") +
           " n=" + std::to_string(n) + " heads=" + std::to_string(n_heads) + " head_dim=" + std::to_string(head_dim) +
           " rope_dim=" + std::to_string(rope_dim);
  c.count = n * n_heads * head_dim;
  c.init = x;
  c.run = [&](const CpuKernels& k, const CpuContext& ctx, float* out) {
    k.rope(ctx, out, n, n_heads, head_dim, rope_dim, pairing, cs.data());
  };
  // scale of an output: |x_a| + |x_b| of its pair (the rotated part), 0 elsewhere (untouched)
  std::vector<double> scale(x.size(), 0.0);
  for (int64_t i = 0; i < n * n_heads; i++)
    for (int64_t p = 0; p < rope_dim / 2; p++) {
      const int64_t a = i * head_dim + (pairing == RopePairing::Interleaved ? 2 * p : p);
      const int64_t b = i * head_dim + (pairing == RopePairing::Interleaved ? 2 * p + 1 : p + rope_dim / 2);
      scale[size_t(a)] = scale[size_t(b)] = std::fabs(double(x[size_t(a)])) + std::fabs(double(x[size_t(b)]));
    }
  c.check = [&](const float* got, const std::string& label) {
    return compare(got, ref.data(), c.count, tol_of(TolKey::Rope).tol, scale.data(), nullptr, label);
  };
  c.go();
}

// A KV cache of capacity rows with its own memory.
struct HostKv {
  std::vector<uint8_t> k, v;
  KvLayer layer;
  HostKv(DType dtype, int64_t kv_dim, int64_t capacity) {
    const size_t bytes = size_t(kv_dim * capacity) * (dtype == DType::F16 ? 2 : 4);
    k.assign(bytes, 0);
    v.assign(bytes, 0);
    layer = KvLayer{dtype, kv_dim, capacity, k.data(), v.data()};
  }
  // random rows 0 .. rows - 1
  void fill(int64_t rows, uint64_t seed) {
    const std::vector<float> kf = random_floats(rows * layer.kv_dim, seed), vf = random_floats(rows * layer.kv_dim, seed + 1);
    for (int64_t i = 0; i < rows * layer.kv_dim; i++) {
      if (layer.dtype == DType::F16) {
        reinterpret_cast<uint16_t*>(k.data())[i] = f32_to_f16(kf[size_t(i)]);
        reinterpret_cast<uint16_t*>(v.data())[i] = f32_to_f16(vf[size_t(i)]);
      } else {
        reinterpret_cast<float*>(k.data())[i] = kf[size_t(i)];
        reinterpret_cast<float*>(v.data())[i] = vf[size_t(i)];
      }
    }
  }
};

void check_kv_append(DType dtype, int64_t kv_dim, int64_t n, int64_t pos, uint64_t seed) {
  // values over many magnitudes: f16 subnormals, rounding ties, overflow to inf
  Rng rng(seed);
  std::vector<float> k(static_cast<size_t>(n * kv_dim)), v(size_t(n * kv_dim));
  for (size_t i = 0; i < k.size(); i++) {
    k[i] = rng.uniform(-1.0f, 1.0f) * std::ldexp(1.0f, int(rng.next() % 44) - 28);
    v[i] = rng.uniform(-1.0f, 1.0f) * std::ldexp(1.0f, int(rng.next() % 44) - 28);
  }
  if (k.size() > 4) {
    k[0] = 65520.0f;               // rounds to inf in f16
    k[1] = 1.0f + 1.0f / 2048.0f;  // a tie: rounds to even
    k[2] = 5.9604645e-8f * 1.5f;   // subnormal tie
    k[3] = -0.0f;
  }
  const int64_t capacity = pos + n + 3;
  HostKv ref_kv(dtype, kv_dim, capacity), got_kv(dtype, kv_dim, capacity);
  cpu_kernels_reference().kv_append(reference_ctx(), ref_kv.layer, k.data(), v.data(), n, pos);
  CaseRunner c;
  c.desc = std::string("kv_append ") + dtype_name(dtype) + " kv_dim=" + std::to_string(kv_dim) + " n=" + std::to_string(n) +
           " pos=" + std::to_string(pos);
  c.count = 1;
  c.before_each = [&] {
    std::fill(got_kv.k.begin(), got_kv.k.end(), 0);
    std::fill(got_kv.v.begin(), got_kv.v.end(), 0);
  };
  c.run = [&](const CpuKernels& kk, const CpuContext& ctx, float* out) {
    kk.kv_append(ctx, got_kv.layer, k.data(), v.data(), n, pos);
    out[0] = 0.0f;
  };
  c.check = [&](const float*, const std::string& label) {
    const size_t elem = dtype == DType::F16 ? 2 : 4;
    Outcome a = compare_bytes(got_kv.k.data(), ref_kv.k.data(), got_kv.k.size(), elem, label + " (keys)");
    Outcome b = compare_bytes(got_kv.v.data(), ref_kv.v.data(), got_kv.v.size(), elem, label + " (values)");
    if (!b.ok) return b;
    return a;
  };
  c.go();
}

void check_attention(DType dtype, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, int64_t n, int64_t pos,
                     uint64_t seed) {
  const int64_t kv_dim = n_kv_heads * head_dim;
  HostKv kv(dtype, kv_dim, pos + n + 5);
  kv.fill(pos + n, seed);
  // queries scaled so that softmax is neither flat nor one-hot
  const std::vector<float> q = random_floats(n * n_heads * head_dim, seed + 2, -2.0f, 2.0f);
  std::vector<float> ref(static_cast<size_t>(n * n_heads * head_dim));
  cpu_kernels_reference().attention(reference_ctx(), ref.data(), q.data(), kv.layer, n, pos, n_heads, n_kv_heads, head_dim);
  CaseRunner c;
  char d[200];
  std::snprintf(d, sizeof d, "attention %s heads=%" PRId64 "/%" PRId64 " head_dim=%" PRId64 " n=%" PRId64 " pos=%" PRId64,
                dtype_name(dtype), n_heads, n_kv_heads, head_dim, n, pos);
  c.desc = d;
  c.count = n * n_heads * head_dim;
  c.shape.max_rows = n;
  c.shape.max_seq_len = pos + n;
  c.shape.max_heads = n_heads;
  c.shape.max_cols = n_heads * head_dim;
  c.run = [&](const CpuKernels& k, const CpuContext& ctx, float* out) {
    k.attention(ctx, out, q.data(), kv.layer, n, pos, n_heads, n_kv_heads, head_dim);
  };
  c.check = [&](const float* got, const std::string& label) {
    return compare(got, ref.data(), c.count, tol_of(TolKey::Attention).tol, nullptr, nullptr, label);
  };
  c.go();
}

void check_swiglu(int64_t count, uint64_t seed) {
  std::vector<float> gate = random_floats(count, seed, -12.0f, 12.0f);
  const std::vector<float> up = random_floats(count, seed + 1, -2.0f, 2.0f);
  const float extremes[] = {-100.0f, 100.0f, -88.0f, 89.0f, 0.0f, -0.0f, 1e-30f, -30.0f};
  for (size_t i = 0; i < gate.size() && i < 8; i++) gate[i * 3 % gate.size()] = extremes[i];
  std::vector<float> ref(static_cast<size_t>(count));
  cpu_kernels_reference().swiglu(reference_ctx(), ref.data(), gate.data(), up.data(), count);
  CaseRunner c;
  c.desc = "swiglu count=" + std::to_string(count);
  c.count = count;
  c.run = [&](const CpuKernels& k, const CpuContext& ctx, float* out) { k.swiglu(ctx, out, gate.data(), up.data(), count); };
  c.check = [&](const float* got, const std::string& label) {
    return compare(got, ref.data(), count, tol_of(TolKey::Swiglu).tol, nullptr, nullptr, label);
  };
  c.go();
}

void check_add(int64_t count, bool in_place, uint64_t seed) {
  const std::vector<float> a = random_floats(count, seed), b = random_floats(count, seed + 1);
  std::vector<float> ref(static_cast<size_t>(count));
  cpu_kernels_reference().add(reference_ctx(), ref.data(), a.data(), b.data(), count);
  CaseRunner c;
  c.desc = "add count=" + std::to_string(count) + (in_place ? " (out aliases a)" : "");
  c.count = count;
  if (in_place) c.init = a;
  c.run = [&](const CpuKernels& k, const CpuContext& ctx, float* out) {
    k.add(ctx, out, in_place ? out : a.data(), b.data(), count);
  };
  c.check = [&](const float* got, const std::string& label) {
    return compare(got, ref.data(), count, tol_of(TolKey::Exact).tol, nullptr, nullptr, label);
  };
  c.go();
}

void run_all_checks() {
  uint64_t seed = 1;
  std::printf("tiers:");
  for (const Tier& t : fast_tiers()) std::printf(" %s", t.k->name);
  std::printf(" (against reference; threads 1 and 3)\ntolerances: |got - ref| <= atol + rtol * scale + k_sigma * sigma\n");
  for (const TolEntry& e : TOLERANCES)
    std::printf("  %-26s atol %-7.2g rtol %-7.2g k_sigma %.0f\n", e.name, e.tol.atol, e.tol.rtol, e.tol.k_sigma);
  std::printf("per case and tier: max abs error @ index, r = worst err / tol over the thread counts\n\n");

  for (const WeightKind& kind : weight_kinds()) {
    const bool float_type = kind.dtype == DType::F32 || kind.dtype == DType::F16 || kind.dtype == DType::BF16;
    std::vector<int64_t> cols_list = {32, 64, 96, 128, 288, 384, 4096};
    if (float_type) cols_list = {7, 32, 96, 172, 288, 4096, 4104};
    if (kind.dtype == DType::NF4) cols_list = {64, 192, 320, 448, 4096};  // odd numbers of 64-blocks
    for (int64_t rows : {1, 3, 17, 113})
      for (int64_t cols : cols_list) {
        if (!kind_fits(kind, cols)) continue;
        for (int64_t n : {1, 2, 7, 33}) check_matmul(kind, rows, cols, n, false, seed++);
      }
    // many activation rows: several activation blocks and column blocks
    if (kind_fits(kind, 4096)) check_matmul(kind, 17, 4096, 77, false, seed++);
    if (kind_fits(kind, 256)) check_matmul(kind, 45, 256, 5, true, seed++);
    // the avx512 prefill GEMM (n >= 8): whole 16-row panels split over threads, at and just
    // past the 8-row register tile
    for (int64_t n : {8, 9, 128})
      if (kind_fits(kind, 2048)) check_matmul(kind, 64, 2048, n, false, seed++);
  }
  {  // INT4 with a group size the SIMD tiers do not specialize (96): the generic fallback
    WeightKind g96{DType::INT4, 96, Int4Style::MinMax, "int4g96"};
    for (int64_t n : {1, 5}) check_matmul(g96, 17, 288, n, false, seed++);
  }

  for (const WeightKind& kind : weight_kinds())
    for (int64_t dim : {32, 64, 172, 288, 4096})
      if (kind_fits(kind, dim))
        for (int64_t n : {1, 7, 33}) check_embed(kind, 37, dim, n, seed++);

  for (int64_t n : {1, 3, 33})
    for (int64_t dim : {8, 64, 172, 288, 4096, 4099}) check_rmsnorm(n, dim, seed++);

  for (RopePairing pairing : {RopePairing::Interleaved, RopePairing::Half})
    for (int64_t n : {1, 2, 7})
      for (int64_t heads : {1, 3, 8})
        for (int64_t head_dim : {8, 48, 64, 128, 640})
          for (int64_t rope_dim : {head_dim, head_dim / 2}) check_rope(n, heads, head_dim, rope_dim, pairing, seed++);

  for (DType dtype : {DType::F32, DType::F16})
    for (int64_t kv_dim : {8, 72, 256, 1024})
      for (int64_t n : {1, 7, 33})
        for (int64_t pos : {0, 5}) check_kv_append(dtype, kv_dim, n, pos, seed++);

  struct Heads {
    int64_t q, kv;
  };
  const Heads heads_list[] = {{1, 1}, {4, 4}, {8, 4}, {8, 2}, {6, 2}, {8, 1}, {16, 2}, {12, 1}};
  for (DType dtype : {DType::F32, DType::F16})
    for (const Heads& h : heads_list)
      for (int64_t head_dim : {8, 48, 64, 128})
        for (int64_t n : {1, 2, 7, 33})
          for (int64_t pos : {0, 13, 100}) {
            if (head_dim == 128 && h.q >= 12 && n == 33 && pos == 100) continue;  // keep the run short
            check_attention(dtype, h.q, h.kv, head_dim, n, pos, seed++);
          }
  check_attention(DType::F16, 32, 8, 128, 1, 1000, seed++);  // a long decode row (70B-like GQA)

  for (int64_t count : {1, 7, 16, 33, 1000, 4097, 11008 * 7}) check_swiglu(count, seed++);
  for (int64_t count : {1, 7, 16, 33, 1000, 4097, 11008 * 7})
    for (bool in_place : {false, true}) check_add(count, in_place, seed++);
}

// ---- --bench ----------------------------------------------------------------------------

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Sum of count floats in 32 lanes: a read stream with no other work.
template <int LANES>
double sum_floats(const float* p, int64_t count) {
  float acc[LANES] = {};
  for (int64_t i = 0; i + LANES <= count; i += LANES)
    for (int u = 0; u < LANES; u++) acc[u] += p[i + u];
  double s = 0;
  for (float a : acc) s += a;
  return s;
}
#if defined(__x86_64__)
__attribute__((target("avx2"))) double sum_floats_avx2(const float* p, int64_t count) { return sum_floats<32>(p, count); }
#endif

// Memory read bandwidth: sum a 512 MiB array, split over the pool's threads (best of 5).
double measure_bandwidth(ThreadPool& pool) {
  const size_t count = size_t(512) << 20 >> 2;
  static std::vector<float> big;
  if (big.empty()) big.assign(count, 1.0f);
#if defined(__x86_64__)
  const bool avx2 = __builtin_cpu_supports("avx2");
#endif
  double best = 0.0;
  for (int rep = 0; rep < 5; rep++) {
    std::vector<double> sums(size_t(pool.size()));
    const double t0 = now_s();
    pool.run([&](int ith, int nth) {
      const Range r = split_range(int64_t(count / 64), ith, nth);
      const float* p = big.data() + r.begin * 64;
      const int64_t m = (r.end - r.begin) * 64;
#if defined(__x86_64__)
      sums[size_t(ith)] = avx2 ? sum_floats_avx2(p, m) : sum_floats<32>(p, m);
#else
      sums[size_t(ith)] = sum_floats<32>(p, m);
#endif
    });
    const double dt = now_s() - t0;
    best = std::max(best, double(count) * 4 / dt / 1e9);
  }
  return best;
}

int run_bench() {
  const int64_t rows = 4096, cols = 4096;
  std::printf("\nbench: matmul %" PRId64 "x%" PRId64 ", weights cycled through >= 256 MiB of copies (n = 1: not in cache)\n", rows,
              cols);
  std::string cpu = "unknown CPU";
  if (FILE* f = std::fopen("/proc/cpuinfo", "r")) {
    char line[512];
    while (std::fgets(line, sizeof line, f) != nullptr)
      if (std::strncmp(line, "model name", 10) == 0 && std::strchr(line, ':') != nullptr) {
        cpu = std::strchr(line, ':') + 2;
        cpu.erase(cpu.find_last_not_of("\n") + 1);
        break;
      }
    std::fclose(f);
  }
  std::printf("device: %s, %u hardware threads\n", cpu.c_str(), std::thread::hardware_concurrency());
  std::printf("ceiling: memory read bandwidth (sum of a 512 MiB array, best of 5)\n");
  double ceiling[3] = {0, 0, 0};
  for (int nth : {1, 2}) {
    ceiling[nth] = measure_bandwidth(pool_of(nth));
    std::printf("  threads=%d  %.1f GB/s\n", nth, ceiling[nth]);
  }
  const std::vector<float> src = random_floats(rows * cols, 99);
  const std::vector<float> x = random_floats(64 * cols, 100);
  const WeightKind kinds[] = {
      {DType::F32, 0, Int4Style::Q4_0, "f32"},       {DType::F16, 0, Int4Style::Q4_0, "f16"},
      {DType::BF16, 0, Int4Style::Q4_0, "bf16"},     {DType::Q8_0, 32, Int4Style::Q4_0, "q8_0"},
      {DType::INT4, 32, Int4Style::Q4_0, "int4g32"}, {DType::INT4, 128, Int4Style::MinMax, "int4g128"},
      {DType::NF4, 64, Int4Style::MinMax, "nf4"},
  };
  std::vector<float> out(static_cast<size_t>(64 * rows)), ref(static_cast<size_t>(rows));
  std::printf("\n%-9s %-8s %-7s %12s %9s %14s\n", "dtype", "tier", "threads", "n=1 GB/s", "ratio", "n=64 GFLOP/s");
  for (const WeightKind& kind : kinds) {
    HostWeight proto;
    make_weight(&proto, kind, rows, cols, src);
    const size_t copies = std::max<size_t>(1, (size_t(256) << 20) / proto.w.nbytes + 1);
    std::vector<HostWeight> ws(copies);
    for (HostWeight& hw : ws) {
      hw.bytes = proto.bytes;
      hw.w = proto.w;
      hw.w.data = hw.bytes.data();
    }
    cpu_kernels_reference().matmul(reference_ctx(), ref.data(), x.data(), proto.w, 1);
    for (const Tier& t : fast_tiers()) {
      for (int nth : {1, 2}) {
        Scratch scratch;
        CpuScratchShape sh;
        sh.max_rows = 64;
        sh.max_cols = cols;
        sh.n_threads = nth;
        scratch.prepare(*t.k, sh);
        CpuContext ctx{&pool_of(nth), scratch.s};
        // checked before timed: n = 1 against the reference, loose (quantized activations)
        t.k->matmul(ctx, out.data(), x.data(), ws[0].w, 1);
        double worst = 0.0, norm = 0.0;
        for (int64_t r = 0; r < rows; r++) {
          worst = std::max(worst, double(std::fabs(out[size_t(r)] - ref[size_t(r)])));
          norm = std::max(norm, double(std::fabs(ref[size_t(r)])));
        }
        if (!(worst <= 0.05 * norm)) {
          std::printf("%-9s %-8s %-7d  refused: n=1 result differs from the reference (%.3g of max |ref|)\n",
                      kind.name.c_str(), t.k->name, nth, worst / norm);
          continue;
        }
        // n = 1: cycle through the copies so each call reads its weights from memory
        size_t iters = 0;
        double t0 = now_s(), dt = 0.0;
        while ((dt = now_s() - t0) < 0.5 || iters < copies) {
          t.k->matmul(ctx, out.data(), x.data(), ws[iters % copies].w, 1);
          iters++;
        }
        const double gbs = double(proto.w.nbytes) * double(iters) / dt / 1e9;
        // n = 64: compute bound
        t.k->matmul(ctx, out.data(), x.data(), ws[0].w, 64);
        iters = 0;
        t0 = now_s();
        while ((dt = now_s() - t0) < 0.5 || iters < 2) {
          t.k->matmul(ctx, out.data(), x.data(), ws[iters % copies].w, 64);
          iters++;
        }
        const double gflops = 2.0 * double(rows * cols * 64) * double(iters) / dt / 1e9;
        std::printf("%-9s %-8s %-7d %12.1f %9.2f %14.1f\n", kind.name.c_str(), t.k->name, nth, gbs, gbs / ceiling[nth],
                    gflops);
      }
    }
  }
  std::printf("ratio = n=1 GB/s / memory bandwidth of the same thread count\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool bench = false;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--bench") {
      bench = true;
    } else if (a == "--verbose") {
      g_verbose = true;
    } else {
      std::fprintf(stderr, "usage: cpu_ops_check [--verbose] [--bench]\n");
      return 2;
    }
  }
  run_all_checks();
  std::printf("\n%d cases, %d tier runs, %d failed\n", g_totals.cases, g_totals.runs, g_totals.failures);
  if (g_totals.failures != 0) return 1;
  if (bench) return run_bench();
  return 0;
}
