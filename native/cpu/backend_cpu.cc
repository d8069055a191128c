#include "backend_cpu.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "../core/aligned_buffer.h"
#include "../core/dtype.h"

namespace lc {

namespace {

// A rope table per distinct (frequencies, mscale): [rows][rope_dim/2][cos, sin], rebuilt for the
// positions of each step.
struct RopeTable {
  std::vector<double> freqs;
  double mscale;
  float* data;  // in the session arena

  bool matches(const Node& n) const { return mscale == n.rope_mscale && freqs == rope_frequencies(n); }
};

class CpuSession final : public BackendSession {
 public:
  CpuSession(const Graph& graph, const std::vector<Weight>& weights, const CpuKernels& kernels, ThreadPool& pool)
      : graph_(graph), weights_(weights), kernels_(kernels), pool_(pool) {}

  Status init(const SessionOptions& opts) {
    opts_ = opts;
    const std::vector<bool> late = buffers_after_last_row(graph_);
    // rope tables first: one per distinct config
    rope_table_of_node_.assign(graph_.nodes.size(), -1);
    for (size_t i = 0; i < graph_.nodes.size(); i++) {
      const Node& n = graph_.nodes[i];
      if (n.op != OpKind::Rope) continue;
      int found = -1;
      for (size_t t = 0; t < rope_tables_.size() && found < 0; t++) {
        if (rope_tables_[t].matches(n)) found = int(t);
      }
      if (found < 0) {
        rope_tables_.push_back({rope_frequencies(n), n.rope_mscale, nullptr});
        found = int(rope_tables_.size() - 1);
      }
      rope_table_of_node_[i] = found;
    }
    // arena: activation buffers, rope tables, kernel scratch
    std::vector<size_t> offsets;
    size_t total = 0;
    auto reserve = [&](size_t bytes) {
      offsets.push_back(total);
      total += (bytes + 63) / 64 * 64;
    };
    CpuScratchShape shape;
    shape.max_rows = opts.max_tokens;
    shape.max_seq_len = opts.max_seq_len;
    shape.n_threads = pool_.size();
    for (const WeightSpec& w : graph_.weights) shape.max_cols = std::max(shape.max_cols, w.cols);
    for (const Node& n : graph_.nodes) shape.max_heads = std::max(shape.max_heads, n.n_heads);
    buffer_capacity_.resize(graph_.buffers.size());
    for (size_t i = 0; i < graph_.buffers.size(); i++) {
      buffer_capacity_[i] = late[i] ? std::min(opts.max_output_rows, opts.max_tokens) : opts.max_tokens;
      reserve(size_t(buffer_capacity_[i]) * size_t(graph_.buffers[i].width) * sizeof(float));
    }
    for (const RopeTable& t : rope_tables_) reserve(size_t(opts.max_tokens) * t.freqs.size() * 2 * sizeof(float));
    const size_t scratch_bytes = kernels_.scratch_bytes(shape);
    reserve(scratch_bytes);
    LC_TRY(arena_.allocate(total, "session activations"));

    size_t k = 0;
    buffers_.resize(graph_.buffers.size());
    for (size_t i = 0; i < graph_.buffers.size(); i++) buffers_[i] = reinterpret_cast<float*>(arena_.data() + offsets[k++]);
    for (RopeTable& t : rope_tables_) t.data = reinterpret_cast<float*>(arena_.data() + offsets[k++]);
    ctx_.pool = &pool_;
    ctx_.scratch.data = arena_.data() + offsets[k++];
    ctx_.scratch.nbytes = scratch_bytes;

    // KV caches: k and v, capacity x kv_dim each; not zeroed: a row is always written before it is read
    const size_t elem = opts.kv_dtype == DType::F16 ? 2 : 4;
    kv_.resize(graph_.kv_caches.size());
    kv_memory_.resize(graph_.kv_caches.size() * 2);
    for (size_t i = 0; i < graph_.kv_caches.size(); i++) {
      const size_t bytes = size_t(opts.max_seq_len) * size_t(graph_.kv_caches[i].kv_dim) * elem;
      LC_TRY(kv_memory_[2 * i].allocate(bytes, "the key cache of \"" + graph_.kv_caches[i].name + "\""));
      LC_TRY(kv_memory_[2 * i + 1].allocate(bytes, "the value cache of \"" + graph_.kv_caches[i].name + "\""));
      kv_[i] = KvLayer{opts.kv_dtype, graph_.kv_caches[i].kv_dim, opts.max_seq_len, kv_memory_[2 * i].data(),
                       kv_memory_[2 * i + 1].data()};
    }
    rows_.assign(graph_.buffers.size(), 0);
    return Status::Ok();
  }

  uint64_t bytes() const override {
    uint64_t total = arena_.size();
    for (const AlignedBuffer& b : kv_memory_) total += b.size();
    return total;
  }

  Status run(const StepRequest& req, int64_t n, StepResult* result) override {
    std::fill(rows_.begin(), rows_.end(), 0);
    for (const StepIo& io : req.inputs) {
      if (io.rows > buffer_capacity_[size_t(io.buffer)]) {
        return invalid_argument("input \"" + graph_.buffers[size_t(io.buffer)].name + "\" has " + std::to_string(io.rows) +
                                " rows; that buffer holds " + std::to_string(buffer_capacity_[size_t(io.buffer)]));
      }
      const size_t width = size_t(graph_.buffers[size_t(io.buffer)].width);
      std::memcpy(buffers_[size_t(io.buffer)], io.data, size_t(io.rows) * width * sizeof(float));
      rows_[size_t(io.buffer)] = io.rows;
    }
    build_rope_tables(req.pos, n);
    for (size_t i = 0; i < graph_.nodes.size(); i++) LC_TRY(run_node(i, req, n));
    result->output_rows.clear();
    for (const StepIo& io : req.outputs) {
      const int64_t rows = rows_[size_t(io.buffer)];
      if (rows > io.rows) {
        return invalid_argument("output \"" + graph_.buffers[size_t(io.buffer)].name + "\" has " + std::to_string(rows) +
                                " rows but the array holds " + std::to_string(io.rows));
      }
      const size_t width = size_t(graph_.buffers[size_t(io.buffer)].width);
      std::memcpy(io.data, buffers_[size_t(io.buffer)], size_t(rows) * width * sizeof(float));
      result->output_rows.push_back(rows);
    }
    return Status::Ok();
  }

 private:
  void build_rope_tables(int64_t pos, int64_t n) {
    for (RopeTable& t : rope_tables_) {
      const size_t pairs = t.freqs.size();
      for (size_t p = 0; p < pairs; p++) {
        for (int64_t i = 0; i < n; i++) {
          const double angle = double(pos + i) * t.freqs[p];  // computed in double, stored in f32
          t.data[(size_t(i) * pairs + p) * 2] = float(std::cos(angle) * t.mscale);
          t.data[(size_t(i) * pairs + p) * 2 + 1] = float(std::sin(angle) * t.mscale);
        }
      }
    }
  }

  Status input_rows(size_t node_index, int buffer, int64_t* rows) const {
    *rows = rows_[size_t(buffer)];
    if (*rows == 0) {
      return invalid_argument("node " + std::to_string(node_index) + " (" + op_name(graph_.nodes[node_index].op) +
                              ") reads buffer \"" + graph_.buffers[size_t(buffer)].name +
                              "\" before anything wrote it in this step");
    }
    return Status::Ok();
  }

  Status run_node(size_t index, const StepRequest& req, int64_t n) {
    const Node& node = graph_.nodes[index];
    const CpuKernels& k = kernels_;
    float* out = node.out >= 0 ? buffers_[size_t(node.out)] : nullptr;
    const float* a = node.a >= 0 ? buffers_[size_t(node.a)] : nullptr;
    const float* b = node.b >= 0 ? buffers_[size_t(node.b)] : nullptr;
    int64_t rows = 0;
    switch (node.op) {
      case OpKind::Embed:
        if (req.tokens == nullptr) return invalid_argument("the graph embeds tokens but the step gave none");
        k.embed(ctx_, out, weights_[size_t(node.weight)], req.tokens, n);
        rows = n;
        break;
      case OpKind::RmsNorm:
        LC_TRY(input_rows(index, node.a, &rows));
        k.rmsnorm(ctx_, out, a, static_cast<const float*>(static_cast<const void*>(weights_[size_t(node.weight)].data)),
                  rows, graph_.buffers[size_t(node.a)].width, node.eps);
        break;
      case OpKind::Matmul:
        LC_TRY(input_rows(index, node.a, &rows));
        k.matmul(ctx_, out, a, weights_[size_t(node.weight)], rows);
        break;
      case OpKind::Rope:
        LC_TRY(input_rows(index, node.a, &rows));
        k.rope(ctx_, buffers_[size_t(node.a)], rows, node.n_heads, node.head_dim, node.rope_dim,
               RopePairing(node.pairing), rope_tables_[size_t(rope_table_of_node_[index])].data);
        return Status::Ok();  // in place: rows unchanged
      case OpKind::KvAppend: {
        int64_t vrows = 0;
        LC_TRY(input_rows(index, node.a, &rows));
        LC_TRY(input_rows(index, node.b, &vrows));
        if (rows != n || vrows != n) return invalid_argument("kv_append needs one key/value row per step row");
        k.kv_append(ctx_, kv_[size_t(node.kv)], a, b, n, req.pos);
        return Status::Ok();
      }
      case OpKind::Attention:
        LC_TRY(input_rows(index, node.a, &rows));
        if (rows != n) return invalid_argument("attention needs one query row per step row");
        k.attention(ctx_, out, a, kv_[size_t(node.kv)], n, req.pos, node.n_heads, node.n_kv_heads, node.head_dim);
        break;
      case OpKind::Swiglu:
      case OpKind::Add: {
        int64_t brows = 0;
        LC_TRY(input_rows(index, node.a, &rows));
        LC_TRY(input_rows(index, node.b, &brows));
        if (rows != brows) return invalid_argument("node " + std::to_string(index) + ": inputs have different row counts");
        const int64_t count = rows * graph_.buffers[size_t(node.a)].width;
        if (node.op == OpKind::Swiglu) {
          k.swiglu(ctx_, out, a, b, count);
        } else {
          k.add(ctx_, out, a, b, count);
        }
        break;
      }
      case OpKind::LastRow: {
        LC_TRY(input_rows(index, node.a, &rows));
        const int64_t width = graph_.buffers[size_t(node.a)].width;
        const int64_t keep = req.all_rows ? rows : 1;
        if (keep > buffer_capacity_[size_t(node.out)]) {
          return invalid_argument("a step returning every row may have at most " +
                                  std::to_string(buffer_capacity_[size_t(node.out)]) + " rows (maxOutputRows), got " +
                                  std::to_string(keep));
        }
        std::memcpy(out, a + (rows - keep) * width, size_t(keep * width) * sizeof(float));
        rows = keep;
        break;
      }
    }
    rows_[size_t(node.out)] = rows;
    return Status::Ok();
  }

  const Graph& graph_;
  const std::vector<Weight>& weights_;
  const CpuKernels& kernels_;
  ThreadPool& pool_;
  SessionOptions opts_;
  CpuContext ctx_;
  AlignedBuffer arena_;
  std::vector<AlignedBuffer> kv_memory_;
  std::vector<KvLayer> kv_;
  std::vector<float*> buffers_;
  std::vector<int64_t> buffer_capacity_;
  std::vector<int64_t> rows_;
  std::vector<RopeTable> rope_tables_;
  std::vector<int> rope_table_of_node_;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(const CpuKernels& kernels, int threads) : kernels_(kernels), pool_(threads) {}

  std::string name() const override { return "cpu"; }
  std::string describe() const override {
    return std::string("cpu (") + kernels_.name + " kernels, " + std::to_string(pool_.size()) + " threads)";
  }
  const CpuKernels& kernels() const { return kernels_; }

  Status alloc_weight(Weight* w) override {
    w->nbytes = weight_bytes(w->dtype, w->rows, w->cols, w->group);
    void* p = nullptr;
    const size_t rounded = (w->nbytes + 63) / 64 * 64;
    if (posix_memalign(&p, 64, rounded) != 0 || p == nullptr) {
      return out_of_memory("cannot allocate " + std::to_string(w->nbytes) + " bytes of host memory for a weight");
    }
    w->data = static_cast<uint8_t*>(p);
    return Status::Ok();
  }

  void free_weight(Weight* w) override {
    std::free(w->data);
    w->data = nullptr;
  }

  WeightSink weight_sink(const Weight& w) override {
    WeightSink sink;
    sink.host = w.data;
    return sink;
  }

  Status create_session(const Graph& graph, const std::vector<Weight>& weights, const SessionOptions& opts,
                        std::unique_ptr<BackendSession>* out) override {
    auto session = std::make_unique<CpuSession>(graph, weights, kernels_, pool_);
    LC_TRY(session->init(opts));
    *out = std::move(session);
    return Status::Ok();
  }

 private:
  const CpuKernels& kernels_;
  ThreadPool pool_;
};

}  // namespace

Status create_cpu_backend(const std::string& tier, int threads, std::unique_ptr<Backend>* out) {
  std::string why;
  const CpuKernels* kernels = cpu_kernels_select(tier, &why);
  if (kernels == nullptr) return unsupported(why);
  if (threads < 0 || threads > 1024) return invalid_argument("threads must be between 0 and 1024");
  try {
    *out = std::make_unique<CpuBackend>(*kernels, threads == 0 ? ThreadPool::default_threads() : threads);
  } catch (const std::system_error& e) {
    return internal_error(std::string("cannot start CPU threads: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace lc
