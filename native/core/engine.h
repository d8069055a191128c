// Engine: one model's validated graph, its weights on one backend, and the sessions that run
// it. Session: one sequence's KV cache and step buffers. Both are plain C++ (no N-API);
// binding/ wraps them and runs their slow calls on worker threads.
//
// Lifetime: dispose() frees the weights once no step is running (steps hold the engine's
// lifetime lock shared, dispose holds it exclusive); later calls fail with ERR_DISPOSED.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "backend.h"
#include "graph.h"
#include "status.h"

namespace lc {

struct EngineOptions {
  std::string device = "cpu";
  int threads = 0;              // CPU threads, 0 = all
  std::string cpu_kernels = "auto";
};

struct NamedSource {
  int weight = -1;  // index into graph.weights
  WeightSource source;
};

class Session;

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  static Status create(Graph graph, const EngineOptions& opts, std::shared_ptr<Engine>* out);
  ~Engine();

  // Fills every weight from its source (each weight exactly once). progress(done, total) in
  // source bytes, called from the loading thread.
  Status load(const std::vector<NamedSource>& sources, const std::function<void(uint64_t, uint64_t)>& progress);
  Status create_session(const SessionOptions& opts, std::unique_ptr<Session>* out);
  void dispose();

  const Graph& graph() const { return graph_; }
  const Backend& backend() const { return *backend_; }
  bool loaded() const { return loaded_; }
  bool disposed() const { return disposed_; }
  uint64_t weight_bytes() const;
  const std::vector<Weight>& weights() const { return weights_; }

 private:
  friend class Session;
  Engine() = default;

  Graph graph_;
  std::unique_ptr<Backend> backend_;
  std::vector<Weight> weights_;
  bool loaded_ = false;
  bool disposed_ = false;
  std::shared_mutex lifetime_;
};

class Session {
 public:
  ~Session();
  // Validates the request against the graph and this session's sizes, then runs one step.
  Status run(const StepRequest& req, StepResult* result);
  void dispose();
  const SessionOptions& options() const { return opts_; }
  uint64_t bytes() const;
  SessionCounters counters() const;

 private:
  friend class Engine;
  Session(std::shared_ptr<Engine> engine, const SessionOptions& opts) : engine_(std::move(engine)), opts_(opts) {}
  Status check(const StepRequest& req, int64_t* n) const;

  std::shared_ptr<Engine> engine_;
  SessionOptions opts_;
  std::unique_ptr<BackendSession> impl_;
  mutable std::shared_mutex lifetime_;
  uint64_t steps_ = 0;  // one step in flight per session (the binding's busy flag)
};

}  // namespace lc
