// Backend: where weights live and how a graph step runs (CPU now; CUDA plugs in here).
// Backend-neutral checks (positions, token ids, row counts) happen in engine.cc before a
// backend sees a step, so a backend only computes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph.h"
#include "status.h"
#include "tensor.h"
#include "weight_loader.h"

namespace lc {

struct SessionOptions {
  int64_t max_seq_len = 0;      // KV cache capacity (positions)
  int64_t max_tokens = 0;       // rows per step
  int64_t max_output_rows = 1;  // rows kept after last_row when a step asks for every row
  DType kv_dtype = DType::F16;  // F32 or F16 (and BF16 on CUDA)
};

// Rows copied into (inputs) or out of (outputs) a buffer around a step.
struct StepIo {
  int buffer = -1;
  float* data = nullptr;
  int64_t rows = 0;  // inputs: rows given; outputs: rows the array can hold
};

struct StepRequest {
  const int32_t* tokens = nullptr;  // for embed nodes
  int64_t n_tokens = 0;
  int64_t pos = 0;  // position of the first row
  std::vector<StepIo> inputs;
  std::vector<StepIo> outputs;
  bool all_rows = false;  // last_row keeps every row
};

struct StepResult {
  std::vector<int64_t> output_rows;  // rows written to each output
};

// How a session's steps ran (for tests and diagnostics; the CPU backend runs every step eagerly).
struct SessionCounters {
  uint64_t steps = 0;           // steps that ran
  uint64_t graph_captures = 0;  // CUDA: decode steps captured as a CUDA graph
  uint64_t graph_launches = 0;  // CUDA: steps run by launching a captured graph (the capturing one included)
};

class BackendSession {
 public:
  virtual ~BackendSession() = default;
  // n = rows of this step (validated), result->output_rows filled.
  virtual Status run(const StepRequest& req, int64_t n, StepResult* result) = 0;
  virtual uint64_t bytes() const = 0;
  virtual SessionCounters counters() const { return {}; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual std::string describe() const = 0;
  virtual Status alloc_weight(Weight* w) = 0;  // sets data/nbytes from dtype and shape
  virtual void free_weight(Weight* w) = 0;
  virtual WeightSink weight_sink(const Weight& w) = 0;
  // After the last weight_sink write of a load (also when the load failed): waits for writes
  // still in flight (a GPU's asynchronous uploads) and releases load-time buffers.
  virtual Status finish_load() { return Status::Ok(); }
  virtual Status create_session(const Graph& graph, const std::vector<Weight>& weights, const SessionOptions& opts,
                                std::unique_ptr<BackendSession>* out) = 0;
};

}  // namespace lc
