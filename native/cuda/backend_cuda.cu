// The CUDA backend: core/backend.h with weights, activations and KV caches in device memory and
// every node launched through the kernels of ops.cuh on one stream per session. The same file is
// compiled by nvcc (the 'cuda' build) and by g++ against the SIMT emulator (the 'simt' build).
//
// Memory (all allocated at load / session creation, nothing in a step)
//   weights     one cudaMalloc per weight, in the layouts of core/dtype.h. Uploaded through a
//               pinned staging ring (kStagingSlots x kStagingSlotBytes): the loader's converted
//               rows are copied into a free slot and sent with cudaMemcpyAsync on the backend's
//               upload stream, so the next chunk's file read and conversion overlap the copy.
//               finish_load() waits for the last copies and frees the ring.
//   session     one device arena (one cudaMalloc), each region 256-byte aligned:
//                 activation buffers  [rows][width] f32; rows = maxTokens, or maxOutputRows for
//                                     the buffers after last_row (as the CPU backend plans them)
//                 rope tables         one per distinct (frequencies, mscale): [maxSeqLen][pairs][2]
//                                     cos/sin, computed once on the host in double exactly as the
//                                     CPU backend computes them, stored as f32
//                 workspace           max(matmul_workspace_bytes, attention_workspace_bytes):
//                                     shared, since the nodes run one after another on one stream
//                 tokens, pos         int32 [maxTokens] and [1]: what the kernels read, so a
//                                     captured graph replays at any position
//                 KV caches           per cache k and v [maxSeqLen][kv_dim] in the session's dtype
//                                     (F16 default, BF16, F32), zeroed once
//               and pinned host memory: tokens + pos (fixed), and an I/O staging area for the
//               step's input and output rows (grown to the largest step seen; growing it drops a
//               captured graph, whose copies point into it).
//
// A step (run): the host plans rows per node (the same validation and messages as the CPU
// backend), copies tokens, pos and input rows into pinned memory, then enqueues on the session's
// stream: H2D copies of tokens, pos and inputs, every node, D2H copies of the outputs into pinned
// memory; synchronizes; copies the outputs into the caller's arrays.
//
// CUDA graphs: a decode step (n == 1) whose signature (inputs, outputs and their rows, tokens or
// not, all_rows) equals the previous decode step's is captured once (relaxed capture mode, so
// other threads' CUDA calls do not spoil it) and the graph is replayed for every later decode step
// with that signature, until the I/O staging moves. Only pinned memory changes between replays
// (tokens, pos, inputs), which the captured H2D copies read at replay time. A capture spoiled by
// another thread's call runs that step eagerly instead. LLAMA_CUDA_GRAPHS=0 (read at session
// creation) turns capture off.
//
// Errors: every CUDA call goes through CUDA_TRY (cudaErrorMemoryAllocation -> ERR_OUT_OF_MEMORY,
// anything else ERR_CUDA with the CUDA name and text); a kernel launcher's Status is prefixed with
// the node ("node 12 (matmul): ..."). After a CUDA error the backend asks the context whether the
// error is sticky (a fault: illegal address, trap, launch failure); if it is, the process-wide
// context is unusable and every later call of every CUDA engine fails at once with that reason.
// Allocation failures free what the failing call allocated (RAII), so the process carries on.
#include "backend_cuda.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "common.cuh"
#include "core/dtype.h"
#include "ops.cuh"

namespace lc {

namespace {

constexpr size_t kAlign = 256;
constexpr int kStagingSlots = 2;
constexpr size_t kStagingSlotBytes = size_t(8) << 20;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

std::string mib(size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", double(bytes) / double(1 << 20));
  return text;
}

// ---- the process-wide context state ------------------------------------------------------------
// A sticky error (a kernel fault) leaves the CUDA context of the process unusable: every later
// call returns it, for every engine. Remember the first one so later calls say why at once.
std::mutex g_broken_mu;
std::string g_broken;  // empty while the context is usable

Status context_usable() {
  std::lock_guard<std::mutex> lock(g_broken_mu);
  if (g_broken.empty()) return Status::Ok();
  return Status(Code::Cuda, g_broken);
}

// Called with the Status of a failed step or load. For a CUDA error, probe the context on
// `stream`: if the error is still reported, it is sticky, and the context is marked unusable.
Status after_error(Status st, cudaStream_t stream) {
  if (st.code != Code::Cuda) return st;
  const cudaError_t probe = cudaStreamQuery(stream);
  (void)cudaGetLastError();
  if (probe == cudaSuccess || probe == cudaErrorNotReady) return st;
  std::lock_guard<std::mutex> lock(g_broken_mu);
  if (g_broken.empty()) {
    g_broken = std::string("the CUDA context is unusable after a fault (") + cudaGetErrorName(probe) +
               "): every CUDA engine of this process fails from now on; dispose them and restart the process. "
               "The fault: " + st.message;
  }
  st.message += " [the CUDA context is now unusable: restart the process to use the GPU again]";
  return st;
}

// Sets the calling thread's device (libuv runs steps on any pool thread).
#define LC_SET_DEVICE(device) CUDA_TRY(cudaSetDevice(device))

// ---- plain helpers over CUDA objects (freed in destructors; errors there are ignored) -----------

struct DeviceMemory {
  void* ptr = nullptr;
  size_t bytes = 0;
  DeviceMemory() = default;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  ~DeviceMemory() { reset(); }
  void reset() {
    if (ptr != nullptr) (void)cudaFree(ptr);
    (void)cudaGetLastError();
    ptr = nullptr;
    bytes = 0;
  }
};

struct PinnedMemory {
  void* ptr = nullptr;
  size_t bytes = 0;
  PinnedMemory() = default;
  PinnedMemory(const PinnedMemory&) = delete;
  PinnedMemory& operator=(const PinnedMemory&) = delete;
  ~PinnedMemory() { reset(); }
  void reset() {
    if (ptr != nullptr) (void)cudaFreeHost(ptr);
    (void)cudaGetLastError();
    ptr = nullptr;
    bytes = 0;
  }
  Status allocate(size_t n, const char* what) {
    reset();
    if (n == 0) return Status::Ok();
    const cudaError_t err = cudaMallocHost(&ptr, n);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      ptr = nullptr;
      return Status(err == cudaErrorMemoryAllocation ? Code::OutOfMemory : Code::Cuda,
                    std::string("cannot allocate ") + mib(n) + " of pinned host memory for " + what + " (" +
                        cudaGetErrorName(err) + ": " + cudaGetErrorString(err) + ")");
    }
    bytes = n;
    return Status::Ok();
  }
  uint8_t* data() const { return static_cast<uint8_t*>(ptr); }
};

// cudaMalloc with a message that says what and how much, and what the device has left.
Status device_alloc(DeviceMemory* mem, size_t bytes, const std::string& what) {
  mem->reset();
  if (bytes == 0) return Status::Ok();
  const cudaError_t err = cudaMalloc(&mem->ptr, bytes);
  if (err == cudaSuccess) {
    mem->bytes = bytes;
    return Status::Ok();
  }
  (void)cudaGetLastError();
  mem->ptr = nullptr;
  size_t free_bytes = 0, total_bytes = 0;
  std::string have;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
    have = "; " + mib(free_bytes) + " of " + mib(total_bytes) + " free";
  }
  (void)cudaGetLastError();
  return Status(err == cudaErrorMemoryAllocation ? Code::OutOfMemory : Code::Cuda,
                std::string("cannot allocate ") + mib(bytes) + " of device memory for " + what + " (" +
                    cudaGetErrorName(err) + ": " + cudaGetErrorString(err) + have + ")");
}

// ---- sessions ----------------------------------------------------------------------------------

struct RopeTable {
  std::vector<double> freqs;
  double mscale = 1.0;
  float* data = nullptr;  // device, in the arena: [capacity][pairs][2]

  bool matches(const Node& n) const { return mscale == n.rope_mscale && freqs == rope_frequencies(n); }
};

// What a step does, planned on the host before anything is enqueued.
struct StepPlan {
  std::vector<int64_t> node_rows;  // rows each node processes (LastRow: rows kept)
  std::vector<int64_t> node_from;  // LastRow: first row kept
  std::vector<int64_t> out_rows;   // rows of each requested output
  std::vector<size_t> in_offset;   // into the pinned I/O staging
  std::vector<size_t> out_offset;
  size_t io_bytes = 0;
};

// What a captured graph depends on besides device memory and the pinned staging contents.
struct Signature {
  bool tokens = false;
  bool all_rows = false;
  std::vector<int64_t> inputs;   // buffer, rows, ...
  std::vector<int64_t> outputs;  // buffer, rows, ...
  bool operator==(const Signature& o) const {
    return tokens == o.tokens && all_rows == o.all_rows && inputs == o.inputs && outputs == o.outputs;
  }
};

class CudaBackend;

class CudaSession final : public BackendSession {
 public:
  CudaSession(int device, const Graph& graph, const std::vector<Weight>& weights)
      : device_(device), graph_(graph), weights_(weights) {}

  ~CudaSession() override {
    (void)cudaSetDevice(device_);
    drop_graph();
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
    (void)cudaGetLastError();
  }

  Status init(const SessionOptions& opts) {
    opts_ = opts;
    if (const char* g = std::getenv("LLAMA_CUDA_GRAPHS")) graphs_enabled_ = std::strcmp(g, "0") != 0;
    LC_SET_DEVICE(device_);
    CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));

    // rope tables: one per distinct configuration, as the CPU backend shares them
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

    // workspace sizes from the kernels
    int64_t mm_cols = 0, mm_rows = 0;
    size_t attention_ws = 0;
    for (const Node& n : graph_.nodes) {
      if (n.op == OpKind::Matmul) {
        mm_cols = std::max(mm_cols, graph_.weights[size_t(n.weight)].cols);
        mm_rows = std::max(mm_rows, graph_.weights[size_t(n.weight)].rows);
      } else if (n.op == OpKind::Attention) {
        attention_ws = std::max(attention_ws, cuda::attention_workspace_bytes(opts.max_tokens, n.n_heads, n.head_dim,
                                                                              opts.max_seq_len));
      }
    }
    const size_t matmul_ws = mm_cols > 0 ? cuda::matmul_workspace_bytes(opts.max_tokens, mm_cols, mm_rows) : 0;
    const size_t workspace = std::max(matmul_ws, attention_ws);

    // the arena plan
    const std::vector<bool> late = buffers_after_last_row(graph_);
    size_t total = 0;
    auto reserve = [&](size_t bytes) {
      const size_t at = total;
      total += align_up(bytes);
      return at;
    };
    std::vector<size_t> buffer_at(graph_.buffers.size());
    buffer_capacity_.resize(graph_.buffers.size());
    size_t activation_bytes = 0;
    for (size_t i = 0; i < graph_.buffers.size(); i++) {
      buffer_capacity_[i] = late[i] ? std::min(opts.max_output_rows, opts.max_tokens) : opts.max_tokens;
      const size_t bytes = size_t(buffer_capacity_[i]) * size_t(graph_.buffers[i].width) * sizeof(float);
      buffer_at[i] = reserve(bytes);
      activation_bytes += align_up(bytes);
    }
    std::vector<size_t> rope_at;
    for (const RopeTable& t : rope_tables_) {
      rope_at.push_back(reserve(size_t(opts.max_seq_len) * t.freqs.size() * 2 * sizeof(float)));
    }
    const size_t workspace_at = reserve(workspace);
    const size_t tokens_at = reserve(size_t(opts.max_tokens) * sizeof(int32_t));
    const size_t pos_at = reserve(sizeof(int32_t));
    const size_t kv_elem = opts.kv_dtype == DType::F32 ? 4 : 2;
    const size_t kv_start = total;
    std::vector<size_t> kv_at;
    for (const KvSpec& kv : graph_.kv_caches) {
      const size_t bytes = size_t(opts.max_seq_len) * size_t(kv.kv_dim) * kv_elem;
      kv_at.push_back(reserve(bytes));
      kv_at.push_back(reserve(bytes));
    }
    const size_t kv_bytes = total - kv_start;

    LC_TRY(device_alloc(&arena_, total,
                        "a session (activations " + mib(activation_bytes) + ", KV caches " + mib(kv_bytes) + " in " +
                            dtype_name(opts.kv_dtype) + ", kernel workspace " + mib(workspace) + ")"));
    uint8_t* base = static_cast<uint8_t*>(arena_.ptr);
    buffers_.resize(graph_.buffers.size());
    for (size_t i = 0; i < graph_.buffers.size(); i++) buffers_[i] = reinterpret_cast<float*>(base + buffer_at[i]);
    workspace_ = cuda::Workspace{workspace > 0 ? base + workspace_at : nullptr, workspace};
    d_tokens_ = reinterpret_cast<int32_t*>(base + tokens_at);
    d_pos_ = reinterpret_cast<int32_t*>(base + pos_at);
    kv_.resize(graph_.kv_caches.size());
    for (size_t i = 0; i < graph_.kv_caches.size(); i++) {
      kv_[i] = KvLayer{opts.kv_dtype, graph_.kv_caches[i].kv_dim, opts.max_seq_len, base + kv_at[2 * i],
                       base + kv_at[2 * i + 1]};
    }
    // KV rows are always written before they are read; zeroed anyway, so a tile that loads rows
    // past the causal limit (and masks their scores) never multiplies stale NaN bits.
    if (kv_bytes > 0) CUDA_TRY(cudaMemsetAsync(base + kv_start, 0, kv_bytes, stream_));

    // rope tables: computed in double, stored in f32, exactly as CpuSession::build_rope_tables
    for (size_t t = 0; t < rope_tables_.size(); t++) {
      RopeTable& table = rope_tables_[t];
      table.data = reinterpret_cast<float*>(base + rope_at[t]);
      const size_t pairs = table.freqs.size();
      std::vector<float> host(size_t(opts.max_seq_len) * pairs * 2);
      for (int64_t pos = 0; pos < opts.max_seq_len; pos++) {
        for (size_t p = 0; p < pairs; p++) {
          const double angle = double(pos) * table.freqs[p];
          host[(size_t(pos) * pairs + p) * 2] = float(std::cos(angle) * table.mscale);
          host[(size_t(pos) * pairs + p) * 2 + 1] = float(std::sin(angle) * table.mscale);
        }
      }
      CUDA_TRY(cudaMemcpyAsync(table.data, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice, stream_));
      CUDA_TRY(cudaStreamSynchronize(stream_));  // `host` goes out of scope
    }

    LC_TRY(pinned_ids_.allocate(align_up(size_t(opts.max_tokens) * sizeof(int32_t)) + kAlign, "step tokens"));
    h_tokens_ = reinterpret_cast<int32_t*>(pinned_ids_.data());
    h_pos_ = reinterpret_cast<int32_t*>(pinned_ids_.data() + align_up(size_t(opts.max_tokens) * sizeof(int32_t)));
    CUDA_TRY(cudaStreamSynchronize(stream_));
    return Status::Ok();
  }

  uint64_t bytes() const override { return arena_.bytes; }

  SessionCounters counters() const override {
    SessionCounters c;
    c.graph_captures = captures_;
    c.graph_launches = graph_launches_;
    return c;
  }

  Status run(const StepRequest& req, int64_t n, StepResult* result) override {
    LC_TRY(context_usable());
    LC_SET_DEVICE(device_);
    StepPlan plan;
    LC_TRY(make_plan(req, n, &plan));
    LC_TRY(ensure_io(plan.io_bytes));

    if (req.tokens != nullptr) std::memcpy(h_tokens_, req.tokens, size_t(n) * sizeof(int32_t));
    *h_pos_ = int32_t(req.pos);
    for (size_t i = 0; i < req.inputs.size(); i++) {
      const StepIo& io = req.inputs[i];
      std::memcpy(pinned_io_.data() + plan.in_offset[i], io.data, row_bytes(io.buffer, io.rows));
    }

    Status st = execute(req, n, plan);
    if (!st.ok()) return after_error(std::move(st), stream_);
    const cudaError_t synced = cudaStreamSynchronize(stream_);
    if (synced != cudaSuccess) return after_error(cuda_try(synced, "cudaStreamSynchronize(stream)"), stream_);

    result->output_rows = plan.out_rows;
    for (size_t j = 0; j < req.outputs.size(); j++) {
      const StepIo& io = req.outputs[j];
      if (plan.out_rows[j] > 0) std::memcpy(io.data, pinned_io_.data() + plan.out_offset[j], row_bytes(io.buffer, plan.out_rows[j]));
    }
    return Status::Ok();
  }

 private:
  static Status cuda_try(cudaError_t err, const char* expr) {
    if (err == cudaSuccess) return Status::Ok();
    return cuda_status(err, expr, __FILE__, __LINE__);
  }

  size_t row_bytes(int buffer, int64_t rows) const {
    return size_t(rows) * size_t(graph_.buffers[size_t(buffer)].width) * sizeof(float);
  }

  Status node_error(size_t index, const Status& st) const {
    return Status(st.code, "node " + std::to_string(index) + " (" + op_name(graph_.nodes[index].op) + "): " + st.message);
  }

  // Rows of every node, with the CPU backend's checks and messages; offsets into the I/O staging.
  Status make_plan(const StepRequest& req, int64_t n, StepPlan* plan) const {
    std::vector<int64_t> rows(graph_.buffers.size(), 0);
    size_t io = 0;
    for (const StepIo& in : req.inputs) {
      if (in.rows > buffer_capacity_[size_t(in.buffer)]) {
        return invalid_argument("input \"" + graph_.buffers[size_t(in.buffer)].name + "\" has " + std::to_string(in.rows) +
                                " rows; that buffer holds " + std::to_string(buffer_capacity_[size_t(in.buffer)]));
      }
      rows[size_t(in.buffer)] = in.rows;
      plan->in_offset.push_back(io);
      io += align_up(row_bytes(in.buffer, in.rows));
    }
    plan->node_rows.assign(graph_.nodes.size(), 0);
    plan->node_from.assign(graph_.nodes.size(), 0);
    auto input_rows = [&](size_t index, int buffer, int64_t* r) -> Status {
      *r = rows[size_t(buffer)];
      if (*r == 0) {
        return invalid_argument("node " + std::to_string(index) + " (" + op_name(graph_.nodes[index].op) +
                                ") reads buffer \"" + graph_.buffers[size_t(buffer)].name +
                                "\" before anything wrote it in this step");
      }
      return Status::Ok();
    };
    for (size_t i = 0; i < graph_.nodes.size(); i++) {
      const Node& node = graph_.nodes[i];
      int64_t r = 0;
      switch (node.op) {
        case OpKind::Embed:
          if (req.tokens == nullptr) return invalid_argument("the graph embeds tokens but the step gave none");
          r = n;
          break;
        case OpKind::RmsNorm:
        case OpKind::Matmul:
        case OpKind::Rope:
        case OpKind::Attention:
          LC_TRY(input_rows(i, node.a, &r));
          if (node.op == OpKind::Attention && r != n) return invalid_argument("attention needs one query row per step row");
          break;
        case OpKind::KvAppend: {
          int64_t vr = 0;
          LC_TRY(input_rows(i, node.a, &r));
          LC_TRY(input_rows(i, node.b, &vr));
          if (r != n || vr != n) return invalid_argument("kv_append needs one key/value row per step row");
          break;
        }
        case OpKind::Swiglu:
        case OpKind::Add: {
          int64_t br = 0;
          LC_TRY(input_rows(i, node.a, &r));
          LC_TRY(input_rows(i, node.b, &br));
          if (r != br) return invalid_argument("node " + std::to_string(i) + ": inputs have different row counts");
          break;
        }
        case OpKind::LastRow: {
          int64_t in = 0;
          LC_TRY(input_rows(i, node.a, &in));
          r = req.all_rows ? in : 1;
          if (r > buffer_capacity_[size_t(node.out)]) {
            return invalid_argument("a step returning every row may have at most " +
                                    std::to_string(buffer_capacity_[size_t(node.out)]) + " rows (maxOutputRows), got " +
                                    std::to_string(r));
          }
          plan->node_from[i] = in - r;
          break;
        }
      }
      plan->node_rows[i] = r;
      if (node.out >= 0) rows[size_t(node.out)] = r;  // rope and kv_append write no buffer
    }
    for (const StepIo& out : req.outputs) {
      const int64_t r = rows[size_t(out.buffer)];
      if (r > out.rows) {
        return invalid_argument("output \"" + graph_.buffers[size_t(out.buffer)].name + "\" has " + std::to_string(r) +
                                " rows but the array holds " + std::to_string(out.rows));
      }
      plan->out_rows.push_back(r);
      plan->out_offset.push_back(io);
      io += align_up(row_bytes(out.buffer, r));
    }
    plan->io_bytes = io;
    return Status::Ok();
  }

  // Grows the pinned I/O staging; a captured graph copies to and from it, so it goes too.
  Status ensure_io(size_t bytes) {
    if (bytes <= pinned_io_.bytes) return Status::Ok();
    drop_graph();
    size_t want = std::max(bytes, pinned_io_.bytes * 2);
    return pinned_io_.allocate(want, "step inputs and outputs");
  }

  Signature signature(const StepRequest& req, const StepPlan& plan) const {
    Signature s;
    s.tokens = req.tokens != nullptr;
    s.all_rows = req.all_rows;
    for (const StepIo& in : req.inputs) {
      s.inputs.push_back(in.buffer);
      s.inputs.push_back(in.rows);
    }
    for (size_t j = 0; j < req.outputs.size(); j++) {
      s.outputs.push_back(req.outputs[j].buffer);
      s.outputs.push_back(plan.out_rows[j]);
    }
    return s;
  }

  void drop_graph() {
    if (graph_exec_ != nullptr) (void)cudaGraphExecDestroy(graph_exec_);
    (void)cudaGetLastError();
    graph_exec_ = nullptr;
    have_graph_sig_ = false;
  }

  // Eagerly, or through the captured decode graph.
  Status execute(const StepRequest& req, int64_t n, const StepPlan& plan) {
    if (!graphs_enabled_ || n != 1) return enqueue(req, n, plan);
    Signature sig = signature(req, plan);
    if (graph_exec_ != nullptr && have_graph_sig_ && sig == graph_sig_) {
      CUDA_TRY(cudaGraphLaunch(graph_exec_, stream_));
      graph_launches_++;
      return Status::Ok();
    }
    const bool repeat = have_last_decode_ && sig == last_decode_;
    last_decode_ = sig;
    have_last_decode_ = true;
    if (!repeat || capture_failures_ >= 3) return enqueue(req, n, plan);
    return capture(req, n, plan, std::move(sig));
  }

  Status capture(const StepRequest& req, int64_t n, const StepPlan& plan, Signature sig) {
    drop_graph();
    CUDA_TRY(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
    Status st = enqueue(req, n, plan);
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
    if (!st.ok() || end != cudaSuccess) {
      if (graph != nullptr) (void)cudaGraphDestroy(graph);
      (void)cudaGetLastError();
      if (!st.ok()) return st;
      if (end == cudaErrorStreamCaptureInvalidated) {  // another thread's call spoiled it: run eagerly
        capture_failures_++;
        return enqueue(req, n, plan);
      }
      return cuda_try(end, "cudaStreamEndCapture(stream, &graph)");
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
    (void)cudaGraphDestroy(graph);
    if (inst != cudaSuccess) return cuda_try(inst, "cudaGraphInstantiate(&exec, graph, 0)");
    graph_exec_ = exec;
    graph_sig_ = std::move(sig);
    have_graph_sig_ = true;
    captures_++;
    CUDA_TRY(cudaGraphLaunch(graph_exec_, stream_));
    graph_launches_++;
    return Status::Ok();
  }

  // The step on the stream: copies in, every node, copies out.
  Status enqueue(const StepRequest& req, int64_t n, const StepPlan& plan) {
    if (req.tokens != nullptr) {
      CUDA_TRY(cudaMemcpyAsync(d_tokens_, h_tokens_, size_t(n) * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
    }
    CUDA_TRY(cudaMemcpyAsync(d_pos_, h_pos_, sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
    for (size_t i = 0; i < req.inputs.size(); i++) {
      const StepIo& io = req.inputs[i];
      CUDA_TRY(cudaMemcpyAsync(buffers_[size_t(io.buffer)], pinned_io_.data() + plan.in_offset[i],
                               row_bytes(io.buffer, io.rows), cudaMemcpyHostToDevice, stream_));
    }
    for (size_t i = 0; i < graph_.nodes.size(); i++) {
      Status st = launch_node(i, n, plan);
      if (!st.ok()) return node_error(i, st);
    }
    for (size_t j = 0; j < req.outputs.size(); j++) {
      if (plan.out_rows[j] == 0) continue;
      const StepIo& io = req.outputs[j];
      CUDA_TRY(cudaMemcpyAsync(pinned_io_.data() + plan.out_offset[j], buffers_[size_t(io.buffer)],
                               row_bytes(io.buffer, plan.out_rows[j]), cudaMemcpyDeviceToHost, stream_));
    }
    return Status::Ok();
  }

  Status launch_node(size_t index, int64_t n, const StepPlan& plan) {
    const Node& node = graph_.nodes[index];
    const int64_t rows = plan.node_rows[index];
    float* out = node.out >= 0 ? buffers_[size_t(node.out)] : nullptr;
    const float* a = node.a >= 0 ? buffers_[size_t(node.a)] : nullptr;
    const float* b = node.b >= 0 ? buffers_[size_t(node.b)] : nullptr;
    switch (node.op) {
      case OpKind::Embed:
        return cuda::embed_cuda(out, weights_[size_t(node.weight)], d_tokens_, n, stream_);
      case OpKind::RmsNorm:
        return cuda::rmsnorm_cuda(out, a, reinterpret_cast<const float*>(weights_[size_t(node.weight)].data), rows,
                                  graph_.buffers[size_t(node.a)].width, node.eps, stream_);
      case OpKind::Matmul:
        return cuda::matmul_cuda(out, a, weights_[size_t(node.weight)], rows, workspace_, stream_);
      case OpKind::Rope:
        return cuda::rope_cuda(buffers_[size_t(node.a)], rows, node.n_heads, node.head_dim, node.rope_dim,
                               RopePairing(node.pairing), rope_tables_[size_t(rope_table_of_node_[index])].data, d_pos_,
                               stream_);
      case OpKind::KvAppend:
        return cuda::kv_append_cuda(kv_[size_t(node.kv)], a, b, n, d_pos_, stream_);
      case OpKind::Attention:
        return cuda::attention_cuda(out, a, kv_[size_t(node.kv)], n, d_pos_, node.n_heads, node.n_kv_heads,
                                    node.head_dim, workspace_, stream_);
      case OpKind::Swiglu:
        return cuda::swiglu_cuda(out, a, b, rows * graph_.buffers[size_t(node.a)].width, stream_);
      case OpKind::Add:
        return cuda::add_cuda(out, a, b, rows * graph_.buffers[size_t(node.a)].width, stream_);
      case OpKind::LastRow: {
        const int64_t width = graph_.buffers[size_t(node.a)].width;
        CUDA_TRY(cudaMemcpyAsync(out, a + plan.node_from[index] * width, size_t(rows * width) * sizeof(float),
                                 cudaMemcpyDeviceToDevice, stream_));
        return Status::Ok();
      }
    }
    return internal_error("unknown op");
  }

  const int device_;
  const Graph& graph_;
  const std::vector<Weight>& weights_;
  SessionOptions opts_;
  cudaStream_t stream_ = nullptr;

  DeviceMemory arena_;
  std::vector<float*> buffers_;
  std::vector<int64_t> buffer_capacity_;
  std::vector<RopeTable> rope_tables_;
  std::vector<int> rope_table_of_node_;
  std::vector<KvLayer> kv_;
  cuda::Workspace workspace_;
  int32_t* d_tokens_ = nullptr;
  int32_t* d_pos_ = nullptr;

  PinnedMemory pinned_ids_;
  int32_t* h_tokens_ = nullptr;
  int32_t* h_pos_ = nullptr;
  PinnedMemory pinned_io_;

  bool graphs_enabled_ = true;
  cudaGraphExec_t graph_exec_ = nullptr;
  Signature graph_sig_;
  bool have_graph_sig_ = false;
  Signature last_decode_;
  bool have_last_decode_ = false;
  int capture_failures_ = 0;
  uint64_t captures_ = 0;
  uint64_t graph_launches_ = 0;
};

// ---- the backend -------------------------------------------------------------------------------

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {}

  ~CudaBackend() override {
    (void)cudaSetDevice(device_);
    release_staging();
    if (upload_ != nullptr) (void)cudaStreamDestroy(upload_);
    (void)cudaGetLastError();
  }

  Status init() {
    LC_TRY(context_usable());
    int count = 0;
    CUDA_TRY(cudaGetDeviceCount(&count));
    if (device_ < 0 || device_ >= count) {
      return Status(Code::Cuda, "CUDA device " + std::to_string(device_) + " does not exist (" + std::to_string(count) +
                                    " device" + (count == 1 ? "" : "s") + ")");
    }
    LC_SET_DEVICE(device_);
    cudaDeviceProp prop;
    CUDA_TRY(cudaGetDeviceProperties(&prop, device_));
    if (prop.major < 8) {
      return unsupported(std::string(prop.name) + " has compute capability " + std::to_string(prop.major) + "." +
                         std::to_string(prop.minor) + "; the CUDA kernels need 8.0 (Ampere) or newer");
    }
    char gib[32];
    std::snprintf(gib, sizeof gib, "%.0f GiB", double(prop.totalGlobalMem) / double(1u << 30));
    description_ = std::string("cuda (") + (LC_SIMT ? "SIMT emulator" : prop.name) + ", sm_" + std::to_string(prop.major) +
                   std::to_string(prop.minor) + ", " + std::to_string(prop.multiProcessorCount) + " SMs, " + gib + ")";
    CUDA_TRY(cudaStreamCreateWithFlags(&upload_, cudaStreamNonBlocking));
    return Status::Ok();
  }

  std::string name() const override { return "cuda"; }
  std::string describe() const override { return description_; }

  Status alloc_weight(Weight* w) override {
    LC_TRY(context_usable());
    LC_SET_DEVICE(device_);
    w->nbytes = weight_bytes(w->dtype, w->rows, w->cols, w->group);
    DeviceMemory mem;
    LC_TRY(device_alloc(&mem, w->nbytes, "a " + std::string(dtype_name(w->dtype)) + " weight [" + std::to_string(w->rows) +
                                             ", " + std::to_string(w->cols) + "]"));
    w->data = static_cast<uint8_t*>(mem.ptr);
    mem.ptr = nullptr;  // owned by the weight now
    return Status::Ok();
  }

  void free_weight(Weight* w) override {
    (void)cudaSetDevice(device_);
    if (w->data != nullptr) (void)cudaFree(w->data);
    (void)cudaGetLastError();
    w->data = nullptr;
  }

  WeightSink weight_sink(const Weight& w) override {
    WeightSink sink;
    uint8_t* dst = w.data;
    const size_t size = w.nbytes;
    sink.write = [this, dst, size](size_t offset, const void* src, size_t n) { return upload(dst, size, offset, src, n); };
    return sink;
  }

  Status finish_load() override {
    LC_SET_DEVICE(device_);
    const cudaError_t err = upload_ != nullptr ? cudaStreamSynchronize(upload_) : cudaSuccess;
    release_staging();
    if (err == cudaSuccess) return Status::Ok();
    return after_error(cuda_status(err, "cudaStreamSynchronize(upload)", __FILE__, __LINE__), upload_);
  }

  Status create_session(const Graph& graph, const std::vector<Weight>& weights, const SessionOptions& opts,
                        std::unique_ptr<BackendSession>* out) override {
    LC_TRY(context_usable());
    if (opts.kv_dtype != DType::F32 && opts.kv_dtype != DType::F16 && opts.kv_dtype != DType::BF16) {
      return invalid_argument(std::string("the CUDA backend keeps KV caches in f16, bf16 or f32, not ") + dtype_name(opts.kv_dtype));
    }
    if (opts.max_seq_len > INT32_MAX || opts.max_tokens > INT32_MAX) {
      return invalid_argument("maxSeqLen and maxTokens must fit int32 on the CUDA backend");
    }
    auto session = std::make_unique<CudaSession>(device_, graph, weights);
    Status st = session->init(opts);
    if (!st.ok()) {
      session.reset();  // frees what init allocated
      return after_error(std::move(st), upload_);
    }
    *out = std::move(session);
    return Status::Ok();
  }

 private:
  // Copies [offset, offset + n) of a weight from host memory through the pinned staging ring.
  Status upload(uint8_t* dst, size_t size, size_t offset, const void* src, size_t n) {
    if (offset > size || n > size - offset) return internal_error("weight upload out of range");
    LC_SET_DEVICE(device_);
    if (staging_.ptr == nullptr) {
      LC_TRY(staging_.allocate(kStagingSlots * kStagingSlotBytes, "weight uploads"));
      for (int s = 0; s < kStagingSlots; s++) {
        const cudaError_t err = cudaEventCreateWithFlags(&slot_done_[s], cudaEventDisableTiming);
        if (err != cudaSuccess) {
          slot_done_[s] = nullptr;
          return cuda_status(err, "cudaEventCreateWithFlags(&slot_done, cudaEventDisableTiming)", __FILE__, __LINE__);
        }
        slot_used_[s] = false;
      }
    }
    const uint8_t* from = static_cast<const uint8_t*>(src);
    while (n > 0) {
      const size_t piece = std::min(n, kStagingSlotBytes);
      const int s = next_slot_;
      next_slot_ = (next_slot_ + 1) % kStagingSlots;
      if (slot_used_[s]) CUDA_TRY(cudaEventSynchronize(slot_done_[s]));  // its previous copy has landed
      uint8_t* slot = staging_.data() + size_t(s) * kStagingSlotBytes;
      std::memcpy(slot, from, piece);
      CUDA_TRY(cudaMemcpyAsync(dst + offset, slot, piece, cudaMemcpyHostToDevice, upload_));
      CUDA_TRY(cudaEventRecord(slot_done_[s], upload_));
      slot_used_[s] = true;
      from += piece;
      offset += piece;
      n -= piece;
    }
    return Status::Ok();
  }

  void release_staging() {
    if (upload_ != nullptr && staging_.ptr != nullptr) (void)cudaStreamSynchronize(upload_);  // copies still reading it
    (void)cudaGetLastError();
    for (int s = 0; s < kStagingSlots; s++) {
      if (slot_done_[s] != nullptr) (void)cudaEventDestroy(slot_done_[s]);
      slot_done_[s] = nullptr;
      slot_used_[s] = false;
    }
    staging_.reset();
    next_slot_ = 0;
  }

  const int device_;
  std::string description_;
  cudaStream_t upload_ = nullptr;
  PinnedMemory staging_;
  cudaEvent_t slot_done_[kStagingSlots] = {};
  bool slot_used_[kStagingSlots] = {};
  int next_slot_ = 0;
};

}  // namespace

Status create_cuda_backend(int device, std::unique_ptr<Backend>* out) {
  auto backend = std::make_unique<CudaBackend>(device);
  LC_TRY(backend->init());
  *out = std::move(backend);
  return Status::Ok();
}

}  // namespace lc
