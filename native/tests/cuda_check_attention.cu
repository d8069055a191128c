// cuda_check_attention: attention_cuda (attention_decode_gqa + merge for n <= 8,
// attention_prefill_causal above) against the CPU reference lc::attention_cpu, on the SIMT
// emulator (target cuda_check_attention) or a GPU (cuda_check_attention_gpu).
//
// Each case fills a KV cache on the device by writing rows directly (F32, F16 or BF16, built with
// core/half.h; no kv_append), rows past pos + n left as NaN so a read past the causal length
// shows; random queries; the position in device memory. The CPU reads the same cache values
// (attention_cpu reads F32 and F16 caches; for BF16 it gets the exact f32 decoding of the bf16
// rows, since it has no BF16 path). Sweeps: n 1, 2, 5, 33, 64; first-row causal lengths 1, 7, 100,
// 257, 1000 (pos = length - 1: not multiples of the 32-row tile or the 128-row split); heads
// 8/8, 32/8, 8/2, 8/1, 6/3, 16/4; head_dim 8, 64, 128 (+ 6, 12, 40, 96 for the generic path);
// every cache dtype. One group of cases uses a position-encoding V (V[t][c] = t/16 + c/1024), so
// a wrong row or column gives a wrong number, not a slightly-off one. Then: CUDA-graph replay at
// two positions, launch counts independent of the position (emulator), and the error statuses.
//
// Usage: cuda_check_attention [--quick]   (--quick: the first sweep only)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/half.h"
#include "core/thread_pool.h"
#include "cpu/ops/ops.h"
#include "cuda/attention.cuh"
#include "cuda/ops.cuh"
#include "cuda_check_util.h"

namespace lc {
namespace {

using check::DeviceArray;
using check::Tolerance;

// ---- tolerance: one table ------------------------------------------------------------------------
// The device and the CPU read the same (already rounded) cache values, so the cache dtype does
// not enter the comparison: what differs is f32 arithmetic (a head_dim-long dot product, exp2f of
// the scaled score, the online-softmax rescaling, a sum over up to ~1100 rows, the split merge)
// against double accumulation. Outputs are weighted means of V: |out| <= max |V| (1 for random V,
// ~70 for the position-encoded V). Expected error ~1e-6 relative to max |V|; the bounds below
// leave about 10x margin and are still far below what one wrong row changes (>= 1e-3 for random
// V at the longest length, >= 1/16 * its weight for the position-encoded V).
struct TolRow {
  DType dtype;
  Tolerance tol;
};
constexpr TolRow kTolerance[] = {
    {DType::F32, {1e-5, 1e-5}},   // f32 accumulation vs double: ~1e-6 seen
    {DType::F16, {1e-5, 1e-5}},   // same values on both sides (f16 rows decoded exactly)
    {DType::BF16, {1e-5, 1e-5}},  // same values on both sides (bf16 rows decoded exactly)
};
Tolerance tolerance_for(DType t) {
  for (const TolRow& r : kTolerance) {
    if (r.dtype == t) return r.tol;
  }
  return {0, 0};
}

// ---- one case ------------------------------------------------------------------------------------

struct Case {
  int64_t n;          // query rows
  int64_t len0;       // causal length of the first row: pos = len0 - 1, rows pos .. pos + n - 1
  int64_t n_heads;
  int64_t n_kv_heads;
  int64_t head_dim;
  DType dtype;
  int64_t capacity;   // 0: pos + n + 13
  bool pos_v;         // position-encoding V instead of random
  bool in_place = false;  // out == q
};

std::string describe(const Case& c, int64_t capacity) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "n=%lld len0=%lld heads=%lld/%lld head_dim=%lld %s cap=%lld%s%s",
                static_cast<long long>(c.n), static_cast<long long>(c.len0), static_cast<long long>(c.n_heads),
                static_cast<long long>(c.n_kv_heads), static_cast<long long>(c.head_dim), dtype_name(c.dtype),
                static_cast<long long>(capacity), c.pos_v ? " posV" : "", c.in_place ? " out=q" : "");
  return buf;
}

// A KV cache on the device and its CPU view (same values).
struct TestCache {
  KvLayer dev;                  // device pointers
  KvLayer host;                 // host pointers, F32 or F16 (BF16 decoded to F32)
  DeviceArray<uint8_t> k_dev, v_dev;
  std::vector<uint8_t> k_host, v_host;  // host view bytes

  TestCache(DType dtype, int64_t capacity, int64_t kv_dim, int64_t valid_rows, bool pos_v, std::mt19937& rng) {
    const size_t es = dtype == DType::F32 ? 4 : 2;
    const size_t count = static_cast<size_t>(capacity * kv_dim);
    std::vector<uint8_t> kb(count * es, 0xFF), vb(count * es, 0xFF);  // 0xFF..: NaN past the valid rows
    const DType host_dtype = dtype == DType::BF16 ? DType::F32 : dtype;
    const size_t hes = host_dtype == DType::F32 ? 4 : 2;
    k_host.assign(count * hes, 0xFF);
    v_host.assign(count * hes, 0xFF);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (int64_t t = 0; t < valid_rows; t++) {
      for (int64_t c = 0; c < kv_dim; c++) {
        const size_t i = static_cast<size_t>(t * kv_dim + c);
        const float kx = dist(rng);
        const float vx = pos_v ? static_cast<float>(t) / 16.0f + static_cast<float>(c) / 1024.0f : dist(rng);
        put(kb.data(), k_host.data(), dtype, i, kx);
        put(vb.data(), v_host.data(), dtype, i, vx);
      }
    }
    k_dev.resize(kb.size());
    v_dev.resize(vb.size());
    k_dev.upload(kb);
    v_dev.upload(vb);
    dev = KvLayer{dtype, kv_dim, capacity, k_dev.get(), v_dev.get()};
    host = KvLayer{host_dtype, kv_dim, capacity, k_host.data(), v_host.data()};
  }

  // Stores x as the device dtype, and the value the device will read into the host view.
  static void put(uint8_t* dev_bytes, uint8_t* host_bytes, DType dtype, size_t i, float x) {
    if (dtype == DType::F32) {
      std::memcpy(dev_bytes + 4 * i, &x, 4);
      std::memcpy(host_bytes + 4 * i, &x, 4);
    } else if (dtype == DType::F16) {
      const uint16_t h = f32_to_f16(x);
      std::memcpy(dev_bytes + 2 * i, &h, 2);
      std::memcpy(host_bytes + 2 * i, &h, 2);
    } else {
      const uint16_t b = f32_to_bf16(x);
      const float back = bf16_to_f32(b);
      std::memcpy(dev_bytes + 2 * i, &b, 2);
      std::memcpy(host_bytes + 4 * i, &back, 4);
    }
  }
};

ThreadPool& pool() {
  static ThreadPool p(1);
  return p;
}

std::vector<float> cpu_attention(const std::vector<float>& q, const KvLayer& host_cache, int64_t n, int64_t pos,
                                 int64_t n_heads, int64_t n_kv_heads, int64_t head_dim) {
  std::vector<float> ref(static_cast<size_t>(n * n_heads * head_dim));
  CpuContext ctx;
  ctx.pool = &pool();
  attention_cpu(ctx, ref.data(), q.data(), host_cache, n, pos, n_heads, n_kv_heads, head_dim);
  return ref;
}

// Device scratch for a call: the workspace attention_workspace_bytes asks for, nothing when 0.
struct TestWorkspace {
  DeviceArray<uint8_t> mem;
  cuda::Workspace ws;
  explicit TestWorkspace(size_t bytes) {
    if (bytes > 0) {
      mem.resize(bytes);
      ws = cuda::Workspace{mem.get(), bytes};
    }
  }
};

// Evidence for passing cases: the largest |got - ref| seen per cache dtype, relative to max |ref|.
struct Worst {
  double err = 0, scale = 0;
  std::string where;
};
Worst& worst_for(DType t) {
  static Worst w[3];
  return w[t == DType::F32 ? 0 : t == DType::F16 ? 1 : 2];
}
void note_error(DType t, const std::string& what, const std::vector<float>& got, const std::vector<float>& ref) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); i++) {
    err = std::fmax(err, std::fabs(double(got[i]) - double(ref[i])));
    scale = std::fmax(scale, std::fabs(double(ref[i])));
  }
  Worst& w = worst_for(t);
  if (scale > 0 && err / scale > (w.scale > 0 ? w.err / w.scale : -1)) w = Worst{err, scale, what};
}

bool run_case(const Case& c, std::mt19937& rng) {
  const int64_t pos = c.len0 - 1;
  const int64_t capacity = c.capacity > 0 ? c.capacity : pos + c.n + 13;
  const int64_t kv_dim = c.n_kv_heads * c.head_dim;
  const std::string what = "attention " + describe(c, capacity);
  TestCache cache(c.dtype, capacity, kv_dim, pos + c.n, c.pos_v, rng);
  const std::vector<float> q = check::random_floats(rng, static_cast<size_t>(c.n * c.n_heads * c.head_dim), -4.0f, 4.0f);
  DeviceArray<float> q_dev(q);
  DeviceArray<float> out_dev(std::vector<float>(q.size(), NAN));  // unwritten outputs stay NaN
  DeviceArray<int32_t> pos_dev(std::vector<int32_t>{static_cast<int32_t>(pos)});
  TestWorkspace ws(cuda::attention_workspace_bytes(c.n, c.n_heads, c.head_dim, capacity));
  float* out_ptr = c.in_place ? q_dev.get() : out_dev.get();
  if (!check::expect_ok(cuda::attention_cuda(out_ptr, q_dev.get(), cache.dev, c.n, pos_dev.get(), c.n_heads,
                                             c.n_kv_heads, c.head_dim, ws.ws, nullptr),
                        what)) {
    return false;
  }
  if (!check::expect_ok(Status(cudaDeviceSynchronize() == cudaSuccess ? Code::Ok : Code::Cuda,
                               cudaGetErrorString(cudaGetLastError())),
                        what + " (sync)")) {
    return false;
  }
  const std::vector<float> got = c.in_place ? q_dev.download() : out_dev.download();
  const std::vector<float> ref = cpu_attention(q, cache.host, c.n, pos, c.n_heads, c.n_kv_heads, c.head_dim);
  note_error(c.dtype, what, got, ref);
  return check::compare(what, got.data(), ref.data(), ref.size(), tolerance_for(c.dtype));
}

// ---- sweeps --------------------------------------------------------------------------------------

constexpr int64_t kRows[] = {1, 2, 5, 33, 64};
constexpr int64_t kLens[] = {1, 7, 100, 257, 1000};
struct Heads {
  int64_t n_heads, n_kv_heads;
};
constexpr Heads kHeads[] = {{8, 8}, {32, 8}, {8, 2}, {8, 1}, {6, 3}, {16, 4}};
constexpr int64_t kHeadDims[] = {8, 64, 128};
constexpr DType kDtypes[] = {DType::F32, DType::F16, DType::BF16};

void sweep_rows_lengths(std::mt19937& rng) {
  // every n x every length: 32 query / 8 KV heads (group 4), head_dim 128, f16 cache
  for (int64_t n : kRows) {
    for (int64_t len : kLens) run_case(Case{n, len, 32, 8, 128, DType::F16, 0, false}, rng);
  }
}

void sweep_heads_dims_dtypes(std::mt19937& rng) {
  // every heads config x head_dim x dtype, once as decode and once as prefill, with (n, length)
  // taken in turn from the lists so every pairing of a kind shows up somewhere
  int turn = 0;
  for (const Heads& h : kHeads) {
    for (int64_t hd : kHeadDims) {
      for (DType dt : kDtypes) {
        const int64_t decode_n = kRows[turn % 3], decode_len = kLens[1 + turn % 4];
        const int64_t prefill_n = kRows[3 + turn % 2], prefill_len = kLens[(turn / 2) % 5];
        run_case(Case{decode_n, decode_len, h.n_heads, h.n_kv_heads, hd, dt, 0, false}, rng);
        run_case(Case{prefill_n, prefill_len, h.n_heads, h.n_kv_heads, hd, dt, 0, false}, rng);
        turn++;
      }
    }
  }
}

void sweep_position_encoded(std::mt19937& rng) {
  run_case(Case{1, 1000, 8, 2, 64, DType::F32, 0, true}, rng);
  run_case(Case{5, 257, 32, 8, 128, DType::F32, 0, true}, rng);
  run_case(Case{2, 100, 8, 1, 8, DType::F16, 0, true}, rng);
  run_case(Case{64, 100, 6, 3, 8, DType::F32, 0, true}, rng);
  run_case(Case{33, 1000, 16, 4, 64, DType::BF16, 0, true}, rng);
  run_case(Case{64, 7, 8, 8, 128, DType::F32, 0, true}, rng);
}

void sweep_other_shapes(std::mt19937& rng) {
  // large capacity: split_len > 128 and most splits past the position (they must do nothing)
  run_case(Case{1, 100, 8, 1, 128, DType::F16, 5000, false}, rng);
  run_case(Case{2, 4000, 8, 2, 64, DType::BF16, 4999, false}, rng);
  run_case(Case{8, 1, 32, 8, 64, DType::F32, 4096, false}, rng);
  // capacity == pos + n exactly (no slack), and a single split (direct output, no merge)
  run_case(Case{1, 1000, 8, 8, 64, DType::F16, 1000, false}, rng);
  run_case(Case{3, 50, 8, 2, 128, DType::F32, 60, false}, rng);
  // n = 8 (the largest decode) and 9 (the smallest prefill)
  run_case(Case{8, 257, 8, 1, 128, DType::F16, 0, false}, rng);
  run_case(Case{9, 257, 8, 1, 128, DType::F16, 0, false}, rng);
  // MQA with many heads: the group (32) fills a decode block; 40 query heads per KV head: split
  run_case(Case{4, 100, 32, 1, 64, DType::F16, 0, false}, rng);
  run_case(Case{2, 300, 40, 1, 64, DType::BF16, 0, false}, rng);
  // generic head dims: padded variants (40, 96), and rows not 16-byte multiples (6 f32 = 24 bytes,
  // 12 f16 = 24 bytes): element-by-element staging
  run_case(Case{1, 257, 8, 2, 40, DType::F16, 0, false}, rng);
  run_case(Case{33, 100, 8, 2, 96, DType::BF16, 0, false}, rng);
  run_case(Case{5, 100, 6, 3, 6, DType::F32, 0, false}, rng);
  run_case(Case{40, 100, 6, 2, 12, DType::F16, 0, false}, rng);
  // in place (out == q): every block reads only the query vectors it writes, or (splits) the
  // merge writes after all of them have read
  run_case(Case{1, 600, 32, 8, 128, DType::F16, 0, false, true}, rng);   // split + merge
  run_case(Case{4, 50, 40, 1, 64, DType::F32, 0, false, true}, rng);     // one split, 5 query chunks
  run_case(Case{64, 300, 16, 4, 128, DType::BF16, 0, false, true}, rng); // prefill
}

// ---- replay: a captured graph at a new position, and launch counts ---------------------------------

void check_replay(int64_t n, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, DType dtype, int64_t capacity,
                  int64_t pos_a, int64_t pos_b, std::mt19937& rng) {
  const int64_t kv_dim = n_kv_heads * head_dim;
  char buf[200];
  std::snprintf(buf, sizeof buf, "graph replay n=%lld heads=%lld/%lld head_dim=%lld %s cap=%lld pos %lld -> %lld",
                static_cast<long long>(n), static_cast<long long>(n_heads), static_cast<long long>(n_kv_heads),
                static_cast<long long>(head_dim), dtype_name(dtype), static_cast<long long>(capacity),
                static_cast<long long>(pos_a), static_cast<long long>(pos_b));
  const std::string what = buf;
  TestCache cache(dtype, capacity, kv_dim, std::max(pos_a, pos_b) + n, false, rng);
  const std::vector<float> q = check::random_floats(rng, static_cast<size_t>(n * n_heads * head_dim), -4.0f, 4.0f);
  DeviceArray<float> q_dev(q);
  DeviceArray<float> out_dev(q.size());
  DeviceArray<int32_t> pos_dev(std::vector<int32_t>{static_cast<int32_t>(pos_a)});
  TestWorkspace ws(cuda::attention_workspace_bytes(n, n_heads, head_dim, capacity));

#if LC_SIMT
  // The same launches (count, blocks, threads) at both positions, and the ones the plan names.
  cuda::AttentionPlan plan;
  if (!check::expect_ok(cuda::attention_plan(&plan, n, n_heads, n_kv_heads, head_dim, capacity), what)) return;
  const uint64_t plan_blocks = uint64_t(plan.grid.x) * plan.grid.y * plan.grid.z + plan.merge_grid.x;
  lc_simt::Stats seen[2];
  for (int k = 0; k < 2; k++) {
    pos_dev.upload(std::vector<int32_t>{static_cast<int32_t>(k == 0 ? pos_a : pos_b)});
    lc_simt::reset_stats();
    if (!check::expect_ok(cuda::attention_cuda(out_dev.get(), q_dev.get(), cache.dev, n, pos_dev.get(), n_heads,
                                               n_kv_heads, head_dim, ws.ws, nullptr),
                          what))
      return;
    seen[k] = lc_simt::stats();
  }
  check::cases()++;
  if (seen[0].launches != seen[1].launches || seen[0].blocks != seen[1].blocks || seen[0].threads != seen[1].threads ||
      seen[0].blocks != plan_blocks) {
    check::failures()++;
    std::printf("FAIL %s: launches %llu/%llu, blocks %llu/%llu (plan %llu), threads %llu/%llu differ\n", what.c_str(),
                (unsigned long long)seen[0].launches, (unsigned long long)seen[1].launches,
                (unsigned long long)seen[0].blocks, (unsigned long long)seen[1].blocks,
                (unsigned long long)plan_blocks, (unsigned long long)seen[0].threads,
                (unsigned long long)seen[1].threads);
  }
#endif

  // Capture once at pos_a, replay at pos_a and (after changing only the device position) pos_b.
  cudaStream_t stream = nullptr;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  pos_dev.upload(std::vector<int32_t>{static_cast<int32_t>(pos_a)});
  bool ok = cudaStreamCreate(&stream) == cudaSuccess &&
            cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) == cudaSuccess;
  const Status st = cuda::attention_cuda(out_dev.get(), q_dev.get(), cache.dev, n, pos_dev.get(), n_heads, n_kv_heads,
                                         head_dim, ws.ws, stream);
  ok = cudaStreamEndCapture(stream, &graph) == cudaSuccess && ok && st.ok();
  ok = ok && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
  if (!check::expect_ok(ok ? Status() : Status(Code::Cuda, st.ok() ? cudaGetErrorString(cudaGetLastError()) : st.message),
                        what + " (capture)")) {
    return;
  }
  for (int k = 0; k < 2; k++) {
    const int64_t pos = k == 0 ? pos_a : pos_b;
    pos_dev.upload(std::vector<int32_t>{static_cast<int32_t>(pos)});
    std::vector<float> nan(q.size(), NAN);
    out_dev.upload(nan);
    const bool ran = cudaGraphLaunch(exec, stream) == cudaSuccess && cudaStreamSynchronize(stream) == cudaSuccess;
    if (!check::expect_ok(ran ? Status() : Status(Code::Cuda, cudaGetErrorString(cudaGetLastError())), what)) break;
    const std::vector<float> got = out_dev.download();
    const std::vector<float> ref = cpu_attention(q, cache.host, n, pos, n_heads, n_kv_heads, head_dim);
    check::compare(what + (k == 0 ? " (at capture position)" : " (replayed at new position)"), got.data(), ref.data(),
                   ref.size(), tolerance_for(dtype));
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

// ---- errors --------------------------------------------------------------------------------------

void expect_status(const std::string& what, const Status& st, Code code, const std::string& text) {
  check::cases()++;
  if (st.code == code && st.message.find(text) != std::string::npos) return;
  check::failures()++;
  std::printf("FAIL %s: expected %s containing \"%s\", got %s: %s\n", what.c_str(), code_name(code), text.c_str(),
              code_name(st.code), st.message.c_str());
}

void check_errors() {
  DeviceArray<float> buf(4096);
  DeviceArray<int32_t> pos_dev(std::vector<int32_t>{0});
  auto call = [&](int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, DType dt, int64_t kv_dim, cuda::Workspace ws,
                  int64_t n) {
    const KvLayer cache{dt, kv_dim, 16, buf.get(), buf.get()};
    return cuda::attention_cuda(buf.get(), buf.get(), cache, n, pos_dev.get(), n_heads, n_kv_heads, head_dim, ws,
                                nullptr);
  };
  expect_status("head_dim 256", call(2, 1, 256, DType::F16, 256, {}, 1), Code::Unsupported, "unsupported head_dim: 256");
  expect_status("head_dim 0", call(2, 1, 0, DType::F16, 0, {}, 1), Code::Unsupported, "unsupported head_dim: 0");
  expect_status("n_heads % n_kv_heads", call(6, 4, 64, DType::F16, 256, {}, 1), Code::InvalidArgument,
                "must be a multiple of n_kv_heads");
  expect_status("q8_0 cache", call(2, 1, 64, DType::Q8_0, 64, {}, 1), Code::Unsupported,
                "unsupported KV cache dtype: q8_0");
  expect_status("kv_dim mismatch", call(4, 2, 64, DType::F32, 100, {}, 1), Code::InvalidArgument, "kv_dim");
  // capacity 16 -> one split: no workspace needed; a big capacity needs one
  expect_status("no workspace needed at capacity 16", call(4, 2, 64, DType::F32, 128, {}, 1), Code::Ok, "");
  {
    const KvLayer cache{DType::F32, 128, 5000, buf.get(), buf.get()};
    expect_status("missing workspace",
                  cuda::attention_cuda(buf.get(), buf.get(), cache, 1, pos_dev.get(), 4, 2, 64, {}, nullptr),
                  Code::InvalidArgument, "workspace");
  }
  expect_status("n = 0 is a no-op", call(4, 2, 64, DType::F32, 128, {}, 0), Code::Ok, "");
  (void)cudaDeviceSynchronize();

  // the workspace formula the backend sizes with, and plans that never depend on a position
  check::cases()++;
  const size_t want = sizeof(float) * 8 * 32 * 32 * (128 + 2);  // 8 rows (decode max) x 32 heads x 32 splits
  const size_t got = cuda::attention_workspace_bytes(512, 32, 128, 4096);
  if (got != want || cuda::attention_workspace_bytes(1, 32, 128, 100) != 0 ||
      cuda::attention_split_len(4096) != 128 || cuda::attention_split_len(5000) != 160 ||
      cuda::attention_split_len(100) != 128) {
    check::failures()++;
    std::printf("FAIL workspace / split formula: %zu bytes (want %zu), split_len(4096)=%d (5000)=%d (100)=%d\n", got,
                want, cuda::attention_split_len(4096), cuda::attention_split_len(5000), cuda::attention_split_len(100));
  }
}

}  // namespace
}  // namespace lc

int main(int argc, char** argv) {
  using namespace lc;
  const char* name = "cuda_check_attention";
  if (!check::have_device(name)) return 0;
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  std::mt19937 rng(20240229);
  std::printf("tolerance |got - ref| <= atol + rtol * |ref|:");
  for (const auto& r : kTolerance) std::printf(" %s atol %g rtol %g;", dtype_name(r.dtype), r.tol.atol, r.tol.rtol);
  std::printf("\n");
  sweep_rows_lengths(rng);
  if (!quick) {
    sweep_heads_dims_dtypes(rng);
    sweep_position_encoded(rng);
    sweep_other_shapes(rng);
    // (the last two need > 48 KiB of shared memory: cudaFuncSetAttribute inside the capture)
    check_replay(1, 32, 8, 128, DType::F16, 1500, 1200, 77, rng);  // decode, 12 splits + merge
    check_replay(8, 32, 8, 128, DType::BF16, 700, 3, 650, rng);    // decode, 32 query vectors a block
    check_replay(33, 8, 1, 128, DType::F32, 600, 100, 400, rng);   // prefill
  }
  check_errors();
  for (DType t : kDtypes) {
    const Worst& w = worst_for(t);
    if (w.scale > 0) {
      std::printf("worst %s case: max |err| %.3g (%.3g of max |ref| %.3g) in %s\n", dtype_name(t), w.err, w.err / w.scale,
                  w.scale, w.where.c_str());
    }
  }
  return check::finish(name);
}
