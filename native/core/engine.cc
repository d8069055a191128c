#include "engine.h"

#include <mutex>
#include <string>

#include "../cpu/backend_cpu.h"
#if defined(LC_CUDA_BACKEND) && LC_CUDA_BACKEND
#include "../cuda/backend_cuda.h"
#endif

namespace lc {

namespace {
constexpr int64_t kMaxSeqLen = int64_t(1) << 22;
constexpr int64_t kMaxTokens = int64_t(1) << 16;
}  // namespace

Status Engine::create(Graph graph, const EngineOptions& opts, std::shared_ptr<Engine>* out) {
  LC_TRY(validate_graph(graph));
  std::shared_ptr<Engine> engine(new Engine());
  if (opts.device == "cpu") {
    LC_TRY(create_cpu_backend(opts.cpu_kernels, opts.threads, &engine->backend_));
  } else if (opts.device == "cuda") {
#if defined(LC_CUDA_BACKEND) && LC_CUDA_BACKEND
    LC_TRY(create_cuda_backend(0, &engine->backend_));
#else
    return unsupported("this build has no CUDA backend: use device 'cpu', or the CUDA build of the addon");
#endif
  } else {
    return invalid_argument("unknown device: " + opts.device + " (expected cpu or cuda)");
  }
  engine->graph_ = std::move(graph);
  engine->weights_.resize(engine->graph_.weights.size());
  for (size_t i = 0; i < engine->weights_.size(); i++) {
    const WeightSpec& spec = engine->graph_.weights[i];
    Weight& w = engine->weights_[i];
    w.dtype = spec.dtype;
    w.rows = spec.rows;
    w.cols = spec.cols;
    w.group = spec.dtype == DType::INT4 ? spec.group
              : spec.dtype == DType::Q8_0 ? kQ8Group
              : spec.dtype == DType::NF4  ? 64
                                          : 0;
  }
  *out = std::move(engine);
  return Status::Ok();
}

Engine::~Engine() { dispose(); }

uint64_t Engine::weight_bytes() const {
  uint64_t total = 0;
  for (const Weight& w : weights_) total += w.nbytes;
  return total;
}

Status Engine::load(const std::vector<NamedSource>& sources, const std::function<void(uint64_t, uint64_t)>& progress) {
  std::unique_lock<std::shared_mutex> lock(lifetime_);
  if (disposed_) return Status(Code::Disposed, "the engine was disposed");
  if (loaded_) return invalid_argument("the weights are already loaded");
  std::vector<int> given(weights_.size(), 0);
  uint64_t total = 0;
  for (const NamedSource& s : sources) {
    if (s.weight < 0 || size_t(s.weight) >= weights_.size()) return invalid_argument("a source names an unknown weight");
    given[size_t(s.weight)]++;
    total += s.source.nbytes;
  }
  for (size_t i = 0; i < given.size(); i++) {
    if (given[i] != 1) {
      return invalid_argument("weight \"" + graph_.weights[i].name + "\" has " + std::to_string(given[i]) +
                              " sources (exactly one expected)");
    }
  }
  uint64_t done = 0;
  Status status;
  for (const NamedSource& s : sources) {
    Weight& w = weights_[size_t(s.weight)];
    status = backend_->alloc_weight(&w);
    if (!status.ok()) {
      status.message = "weight \"" + graph_.weights[size_t(s.weight)].name + "\": " + status.message;
      break;
    }
    status = load_weight(s.source, w, backend_->weight_sink(w), graph_.weights[size_t(s.weight)].name,
                         [&](uint64_t bytes) {
                           done += bytes;
                           if (progress) progress(done, total);
                         });
    if (!status.ok()) break;
  }
  Status finished = backend_->finish_load();  // uploads still in flight, load-time buffers
  if (status.ok()) status = finished;
  if (!status.ok()) {  // leave nothing half-loaded behind
    for (Weight& w : weights_) {
      if (w.data != nullptr) backend_->free_weight(&w);
      w.nbytes = 0;
    }
    return status;
  }
  loaded_ = true;
  return Status::Ok();
}

Status Engine::create_session(const SessionOptions& opts, std::unique_ptr<Session>* out) {
  std::shared_lock<std::shared_mutex> lock(lifetime_);
  if (disposed_) return Status(Code::Disposed, "the engine was disposed");
  if (!loaded_) return invalid_argument("load the weights before creating a session");
  if (opts.max_seq_len <= 0 || opts.max_seq_len > kMaxSeqLen) return invalid_argument("maxSeqLen out of range: " + std::to_string(opts.max_seq_len));
  if (opts.max_tokens <= 0 || opts.max_tokens > kMaxTokens) return invalid_argument("maxTokens out of range: " + std::to_string(opts.max_tokens));
  if (opts.max_output_rows <= 0 || opts.max_output_rows > opts.max_tokens) {
    return invalid_argument("maxOutputRows must be between 1 and maxTokens");
  }
  if (opts.kv_dtype == DType::BF16 && backend_->name() != "cuda") {
    return invalid_argument("a bf16 KV cache needs the CUDA backend; the " + backend_->name() + " backend keeps f32 or f16");
  }
  if (opts.kv_dtype != DType::F32 && opts.kv_dtype != DType::F16 && opts.kv_dtype != DType::BF16) {
    return invalid_argument("the KV cache type must be f32, f16 or (CUDA) bf16");
  }
  std::unique_ptr<Session> session(new Session(shared_from_this(), opts));
  LC_TRY(backend_->create_session(graph_, weights_, opts, &session->impl_));
  *out = std::move(session);
  return Status::Ok();
}

void Engine::dispose() {
  std::unique_lock<std::shared_mutex> lock(lifetime_);
  if (disposed_) return;
  disposed_ = true;
  for (Weight& w : weights_) {
    if (w.data != nullptr && backend_) backend_->free_weight(&w);
  }
}

Session::~Session() { dispose(); }

void Session::dispose() {
  std::unique_lock<std::shared_mutex> lock(lifetime_);
  impl_.reset();
}

uint64_t Session::bytes() const {
  std::shared_lock<std::shared_mutex> lock(lifetime_);
  return impl_ ? impl_->bytes() : 0;
}

SessionCounters Session::counters() const {
  std::shared_lock<std::shared_mutex> lock(lifetime_);
  SessionCounters c = impl_ ? impl_->counters() : SessionCounters{};
  c.steps = steps_;
  return c;
}

Status Session::check(const StepRequest& req, int64_t* n_out) const {
  const Graph& g = engine_->graph_;
  int64_t n = req.n_tokens;
  if (req.tokens == nullptr && req.n_tokens != 0) return invalid_argument("token count without tokens");
  for (const StepIo& io : req.inputs) {
    if (io.buffer < 0 || size_t(io.buffer) >= g.buffers.size()) return invalid_argument("an input names an unknown buffer");
    if (io.rows <= 0) return invalid_argument("input \"" + g.buffers[size_t(io.buffer)].name + "\" has no rows");
    if (n == 0) n = io.rows;
    if (io.rows != n) {
      return invalid_argument("input \"" + g.buffers[size_t(io.buffer)].name + "\" has " + std::to_string(io.rows) +
                              " rows, the step has " + std::to_string(n));
    }
  }
  for (const StepIo& io : req.outputs) {
    if (io.buffer < 0 || size_t(io.buffer) >= g.buffers.size()) return invalid_argument("an output names an unknown buffer");
  }
  if (n <= 0) return invalid_argument("a step needs at least one token or input row");
  if (n > opts_.max_tokens) {
    return invalid_argument("a step of " + std::to_string(n) + " tokens exceeds this session's maxTokens (" +
                            std::to_string(opts_.max_tokens) + ")");
  }
  if (req.pos < 0 || req.pos + n > opts_.max_seq_len) {
    return Status(Code::ContextFull, "positions " + std::to_string(req.pos) + ".." + std::to_string(req.pos + n - 1) +
                                         " do not fit the context of " + std::to_string(opts_.max_seq_len) + " tokens");
  }
  for (const Node& node : g.nodes) {
    if (node.op != OpKind::Embed || req.tokens == nullptr) continue;
    const int64_t vocab = g.weights[size_t(node.weight)].rows;
    for (int64_t i = 0; i < n; i++) {
      if (req.tokens[i] < 0 || req.tokens[i] >= vocab) {
        return invalid_argument("token id " + std::to_string(req.tokens[i]) + " at index " + std::to_string(i) +
                                " is outside the vocabulary (0.." + std::to_string(vocab - 1) + ")");
      }
    }
  }
  *n_out = n;
  return Status::Ok();
}

Status Session::run(const StepRequest& req, StepResult* result) {
  std::shared_lock<std::shared_mutex> engine_lock(engine_->lifetime_);
  std::shared_lock<std::shared_mutex> lock(lifetime_);
  if (engine_->disposed_) return Status(Code::Disposed, "the model was disposed");
  if (!impl_) return Status(Code::Disposed, "the session was disposed");
  int64_t n = 0;
  LC_TRY(check(req, &n));
  LC_TRY(impl_->run(req, n, result));
  steps_++;
  return Status::Ok();
}

}  // namespace lc
