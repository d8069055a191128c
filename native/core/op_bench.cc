#include "op_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <system_error>

#include "../cpu/kernels.h"
#include "half.h"

namespace lc {

namespace {

// Deterministic bits of index i (splitmix64): fills in parallel without a generator state.
inline uint64_t hash64(uint64_t i, uint32_t seed) {
  uint64_t x = i * 0x9E3779B97F4A7C15ull + (uint64_t(seed) << 32) + seed;
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline float unit(uint64_t h) { return float(h >> 40) * (2.0f / 16777216.0f) - 1.0f; }  // [-1, 1)

// Fills `count` elements in parallel; fill(i) gives element i.
template <typename T, typename F>
void parallel_fill(ThreadPool& pool, T* p, int64_t count, F fill) {
  pool.run([&](int ith, int nth) {
    const Range r = split_range(count, ith, nth);
    for (int64_t i = r.begin; i < r.end; i++) p[i] = fill(i);
  });
}

// Copies of `bytes` that together reach `cold_bytes` (at most 256).
int copies_for(uint64_t cold_bytes, size_t bytes) {
  if (cold_bytes == 0 || bytes == 0) return 1;
  return int(std::min<uint64_t>(256, std::max<uint64_t>(1, (cold_bytes + bytes - 1) / bytes)));
}

Status positive(int64_t v, const char* what) {
  if (v <= 0) return invalid_argument(std::string("op bench: ") + what + " must be positive");
  return Status::Ok();
}

}  // namespace

Status CpuOpBench::create(const CpuOpBenchSpec& spec, std::unique_ptr<CpuOpBench>* out) {
  std::unique_ptr<CpuOpBench> b(new CpuOpBench());
  LC_TRY(b->init(spec));
  *out = std::move(b);
  return Status::Ok();
}

std::string CpuOpBench::kernel() const {
  std::string k = std::string(kernels_->name) + " " + spec_.op;
  if (spec_.op == "matmul" || spec_.op == "embed") k += std::string(" ") + dtype_name(spec_.dtype);
  if (spec_.op == "attention" || spec_.op == "kv_append") k += std::string(" kv ") + dtype_name(spec_.kv_dtype);
  return k + ", " + std::to_string(pool_->size()) + " threads";
}

Status CpuOpBench::init(const CpuOpBenchSpec& spec) {
  spec_ = spec;
  spec_.a = spec_.b = nullptr;  // borrowed only during init
  std::string why;
  kernels_ = cpu_kernels_select(spec.tier, &why);
  if (kernels_ == nullptr) return unsupported(why);
  if (spec.threads < 0 || spec.threads > 1024) return invalid_argument("op bench: threads must be between 0 and 1024");
  try {
    pool_ = std::make_unique<ThreadPool>(spec.threads == 0 ? ThreadPool::default_threads() : spec.threads);
  } catch (const std::system_error& e) {
    return internal_error(std::string("cannot start CPU threads: ") + e.what());
  }
  LC_TRY(positive(spec.n, "n"));
  const std::string& op = spec.op;
  const int64_t n = spec.n;
  // Widths of a (input), b (second input) and out, per row.
  int64_t a_width = 0, b_width = 0, out_width = 0, out_rows = n;
  int64_t q_dim = 0, kv_dim = 0;
  if (op == "matmul" || op == "embed") {
    LC_TRY(positive(spec.rows, "rows"));
    LC_TRY(positive(spec.cols, "cols"));
    if (spec.dtype == DType::Q8_0 && spec.cols % kQ8Group != 0) return invalid_argument("op bench: q8_0 needs cols % 32 == 0");
    if (spec.dtype == DType::INT4 &&
        (spec.group < 32 || spec.group > 128 || spec.group % 32 != 0 || spec.cols % spec.group != 0)) {
      return invalid_argument("op bench: int4 needs a group of 32, 64 or 128 dividing cols");
    }
    if (spec.dtype == DType::NF4 && spec.cols % 64 != 0) return invalid_argument("op bench: nf4 needs cols % 64 == 0");
    a_width = op == "matmul" ? spec.cols : 0;
    out_width = op == "matmul" ? spec.rows : spec.cols;
  } else if (op == "rmsnorm" || op == "swiglu" || op == "add" || op == "last_row") {
    LC_TRY(positive(spec.width, "width"));
    a_width = spec.width;
    b_width = (op == "swiglu" || op == "add") ? spec.width : 0;
    out_width = spec.width;
    if (op == "last_row") out_rows = 1;
  } else if (op == "rope" || op == "kv_append" || op == "attention") {
    LC_TRY(positive(spec.head_dim, "head_dim"));
    LC_TRY(positive(spec.n_heads, "n_heads"));
    const int64_t kv_heads = spec.n_kv_heads > 0 ? spec.n_kv_heads : spec.n_heads;
    if (spec.n_heads % kv_heads != 0) return invalid_argument("op bench: n_heads must be a multiple of n_kv_heads");
    if (spec.head_dim % 2 != 0) return invalid_argument("op bench: head_dim must be even");
    spec_.n_kv_heads = kv_heads;
    q_dim = spec.n_heads * spec.head_dim;
    kv_dim = kv_heads * spec.head_dim;
    if (spec_.ctx == 0) spec_.ctx = n;
    if (spec_.ctx < n) return invalid_argument("op bench: ctx must be at least n");
    if (op == "rope") {
      a_width = q_dim;
    } else if (op == "kv_append") {
      a_width = b_width = kv_dim;
    } else {
      a_width = out_width = q_dim;
    }
    if (spec.kv_dtype != DType::F32 && spec.kv_dtype != DType::F16) return unsupported("op bench: the CPU KV cache is f32 or f16");
  } else {
    return invalid_argument("op bench: unknown op \"" + op + "\"");
  }
  ThreadPool& pool = *pool_;
  const uint32_t seed = spec.seed;

  auto f32_buffer = [&](AlignedBuffer* mem, int64_t count, const float* given, size_t given_count, uint32_t salt,
                        const char* what) -> Status {
    if (given != nullptr && given_count != size_t(count)) {
      return invalid_argument(std::string("op bench: ") + what + " has " + std::to_string(given_count) + " values, " +
                              std::to_string(count) + " expected");
    }
    LC_TRY(mem->allocate(size_t(count) * sizeof(float), std::string("the op bench ") + what));
    float* p = reinterpret_cast<float*>(mem->data());
    if (given != nullptr) {
      std::memcpy(p, given, size_t(count) * sizeof(float));
    } else {
      parallel_fill(pool, p, count, [&](int64_t i) { return unit(hash64(uint64_t(i), seed + salt)); });
    }
    return Status::Ok();
  };
  if (a_width > 0) {
    LC_TRY(f32_buffer(&a_mem_, n * a_width, spec.a, spec.a_count, 11, "input a"));
    a_ = reinterpret_cast<float*>(a_mem_.data());
  }
  if (b_width > 0) {
    LC_TRY(f32_buffer(&b_mem_, n * b_width, spec.b, spec.b_count, 23, "input b"));
    b_ = reinterpret_cast<float*>(b_mem_.data());
  }
  if (out_width > 0) {
    out_count_ = size_t(out_rows * out_width);
    LC_TRY(out_mem_.allocate(out_count_ * sizeof(float), "the op bench output", true));
    out_ = reinterpret_cast<float*>(out_mem_.data());
  } else if (op == "rope") {
    out_ = a_;
    out_count_ = size_t(n * a_width);
  }

  // Weight of matmul / embed: from the caller's source, or random in storage layout.
  if (op == "matmul" || op == "embed") {
    weight_.dtype = spec.dtype;
    weight_.rows = spec.rows;
    weight_.cols = spec.cols;
    weight_.group = spec.dtype == DType::INT4 ? spec.group : spec.dtype == DType::Q8_0 ? kQ8Group : spec.dtype == DType::NF4 ? 64 : 0;
    weight_.nbytes = weight_bytes(weight_.dtype, weight_.rows, weight_.cols, weight_.group);
    copy_stride_ = (weight_.nbytes + 63) / 64 * 64;
    if (op == "matmul") copies_ = copies_for(spec.cold_bytes, copy_stride_);
    LC_TRY(weight_mem_.allocate(copy_stride_ * size_t(copies_), "the op bench weight (" + std::to_string(copies_) + " x " +
                                                                    std::to_string(weight_.nbytes) + " bytes)"));
    weight_.data = weight_mem_.data();
    if (spec.has_weight_source) {
      WeightSink sink;
      sink.host = weight_.data;
      LC_TRY(load_weight(spec.weight_source, weight_, sink, "op bench weight", [](uint64_t) {}));
    } else {
      const int64_t elems = spec.rows * spec.cols;
      uint8_t* d = weight_.data;
      switch (spec.dtype) {
        case DType::F32:
          parallel_fill(pool, reinterpret_cast<float*>(d), elems, [&](int64_t i) { return 0.05f * unit(hash64(uint64_t(i), seed)); });
          break;
        case DType::F16:
          parallel_fill(pool, reinterpret_cast<uint16_t*>(d), elems,
                        [&](int64_t i) { return f32_to_f16(0.05f * unit(hash64(uint64_t(i), seed))); });
          break;
        case DType::BF16:
          parallel_fill(pool, reinterpret_cast<uint16_t*>(d), elems,
                        [&](int64_t i) { return f32_to_bf16(0.05f * unit(hash64(uint64_t(i), seed))); });
          break;
        case DType::Q8_0: {
          // codes random int8, scales 0.05/127 (f16)
          parallel_fill(pool, reinterpret_cast<uint64_t*>(d), elems / 8, [&](int64_t i) { return hash64(uint64_t(i), seed); });
          const uint16_t scale = f32_to_f16(0.05f / 127.0f);
          parallel_fill(pool, reinterpret_cast<uint16_t*>(d + elems), spec.rows * (spec.cols / kQ8Group),
                        [&](int64_t) { return scale; });
          break;
        }
        case DType::INT4: {
          // codes random nibbles, {scale, min} = {0.1/15, -0.05}: weights in [-0.05, 0.05]
          parallel_fill(pool, reinterpret_cast<uint64_t*>(d), elems / 16, [&](int64_t i) { return hash64(uint64_t(i), seed); });
          const uint16_t sc = f32_to_f16(0.1f / 15.0f), mn = f32_to_f16(-0.05f);
          parallel_fill(pool, reinterpret_cast<uint16_t*>(d + elems / 2), spec.rows * (spec.cols / spec.group) * 2,
                        [&](int64_t i) { return (i & 1) ? mn : sc; });
          break;
        }
        case DType::NF4: {
          // codes random nibbles, f32 absmax scales 0.05 per block of 64
          parallel_fill(pool, reinterpret_cast<uint64_t*>(d), elems / 16, [&](int64_t i) { return hash64(uint64_t(i), seed); });
          parallel_fill(pool, reinterpret_cast<float*>(d + elems / 2), spec.rows * (spec.cols / 64), [&](int64_t) { return 0.05f; });
          break;
        }
      }
    }
    for (int c = 1; c < copies_; c++) std::memcpy(weight_.data + size_t(c) * copy_stride_, weight_.data, weight_.nbytes);
    if (op == "embed") {
      tokens_.resize(size_t(n));
      for (int64_t i = 0; i < n; i++) tokens_[size_t(i)] = int32_t(hash64(uint64_t(i), seed + 5) % uint64_t(spec.rows));
    }
  }
  if (op == "rmsnorm") {
    LC_TRY(f32_buffer(&norm_mem_, spec.width, nullptr, 0, 31, "norm weight"));
  }
  if (op == "rope") {
    // cos/sin of positions ctx-n .. ctx-1, theta 10000 over the whole head
    const int64_t pairs = spec.head_dim / 2;
    LC_TRY(table_mem_.allocate(size_t(n * pairs * 2) * sizeof(float), "the rope table"));
    cos_sin_ = reinterpret_cast<float*>(table_mem_.data());
    for (int64_t i = 0; i < n; i++) {
      for (int64_t p = 0; p < pairs; p++) {
        const double angle = double(spec_.ctx - n + i) * std::pow(10000.0, -2.0 * double(p) / double(spec.head_dim));
        cos_sin_[(i * pairs + p) * 2] = float(std::cos(angle));
        cos_sin_[(i * pairs + p) * 2 + 1] = float(std::sin(angle));
      }
    }
  }
  if (op == "kv_append" || op == "attention") {
    const size_t elem = spec.kv_dtype == DType::F16 ? 2 : 4;
    const int64_t count = spec_.ctx * kv_dim;
    copy_stride_ = (size_t(count) * elem + 63) / 64 * 64;
    if (op == "attention") copies_ = copies_for(spec.cold_bytes, 2 * copy_stride_);
    LC_TRY(k_mem_.allocate(copy_stride_ * size_t(copies_), "the op bench key cache"));
    LC_TRY(v_mem_.allocate(copy_stride_ * size_t(copies_), "the op bench value cache"));
    for (int which = 0; which < 2; which++) {
      uint8_t* d = (which == 0 ? k_mem_ : v_mem_).data();
      const uint32_t s = seed + 41 + uint32_t(which);
      if (elem == 2) {
        parallel_fill(pool, reinterpret_cast<uint16_t*>(d), count, [&](int64_t i) { return f32_to_f16(unit(hash64(uint64_t(i), s))); });
      } else {
        parallel_fill(pool, reinterpret_cast<float*>(d), count, [&](int64_t i) { return unit(hash64(uint64_t(i), s)); });
      }
    }
    for (int c = 1; c < copies_; c++) {
      std::memcpy(k_mem_.data() + size_t(c) * copy_stride_, k_mem_.data(), size_t(count) * elem);
      std::memcpy(v_mem_.data() + size_t(c) * copy_stride_, v_mem_.data(), size_t(count) * elem);
    }
    kv_ = KvLayer{spec.kv_dtype, kv_dim, spec_.ctx, k_mem_.data(), v_mem_.data()};
  }
  CpuScratchShape shape;
  shape.max_rows = n;
  shape.max_cols = std::max<int64_t>(1, op == "matmul" ? spec.cols : a_width);
  shape.max_seq_len = std::max<int64_t>(1, spec_.ctx);
  shape.max_heads = std::max<int64_t>(1, spec.n_heads);
  shape.n_threads = pool.size();
  scratch_bytes_ = kernels_->scratch_bytes(shape);
  LC_TRY(scratch_mem_.allocate(scratch_bytes_, "the op bench kernel scratch"));
  scratch_ = scratch_mem_.data();
  return Status::Ok();
}

void CpuOpBench::run_once() {
  const CpuKernels& k = *kernels_;
  CpuContext ctx;
  ctx.pool = pool_.get();
  ctx.scratch.data = scratch_;
  ctx.scratch.nbytes = scratch_bytes_;
  const CpuOpBenchSpec& s = spec_;
  const std::string& op = s.op;
  const int64_t n = s.n;
  // the copy this run reads (cold_bytes): the one the previous runs left least recently in cache
  const size_t shift = size_t(next_copy_) * copy_stride_;
  next_copy_ = (next_copy_ + 1) % copies_;
  if (op == "matmul") {
    Weight w = weight_;
    w.data += shift;
    k.matmul(ctx, out_, a_, w, n);
  } else if (op == "embed") {
    k.embed(ctx, out_, weight_, tokens_.data(), n);
  } else if (op == "rmsnorm") {
    k.rmsnorm(ctx, out_, a_, reinterpret_cast<const float*>(norm_mem_.data()), n, s.width, 1e-5f);
  } else if (op == "swiglu") {
    k.swiglu(ctx, out_, a_, b_, n * s.width);
  } else if (op == "add") {
    k.add(ctx, out_, a_, b_, n * s.width);
  } else if (op == "last_row") {
    std::memcpy(out_, a_ + (n - 1) * s.width, size_t(s.width) * sizeof(float));
  } else if (op == "rope") {
    k.rope(ctx, a_, n, s.n_heads, s.head_dim, s.head_dim, RopePairing::Interleaved, cos_sin_);
  } else if (op == "kv_append") {
    k.kv_append(ctx, kv_, a_, b_, n, s.ctx - n);
  } else if (op == "attention") {
    KvLayer kv = kv_;
    kv.k = static_cast<uint8_t*>(kv.k) + shift;
    kv.v = static_cast<uint8_t*>(kv.v) + shift;
    k.attention(ctx, out_, a_, kv, n, s.ctx - n, s.n_heads, s.n_kv_heads, s.head_dim);
  }
}

double CpuOpBench::run(int64_t iterations) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iterations; i++) run_once();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace lc
