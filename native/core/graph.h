// The forward graph: a short list of coarse ops over named activation buffers, weights and
// KV caches, declared in TypeScript (lib/model/transformer.ts), parsed by binding/spec.cc,
// validated here once, then run step after step by a backend.
//
// Buffers hold f32 activations, one row per token: buffer[rows][width]. A step feeds n tokens
// (or n input rows) at positions pos .. pos+n-1; every op's output has as many rows as its
// input, except last_row, whose output keeps only the last row (or all rows when the step
// asks for every position's output, e.g. for perplexity).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "status.h"
#include "tensor.h"

namespace lc {

enum class OpKind : int32_t {
  Embed,      // out[n][dim] = table[tokens[i]]                      (weight = table)
  RmsNorm,    // out = rmsnorm(a) * weight                           (eps)
  Matmul,     // out[n][w.rows] = a[n][w.cols] . W^T                 (weight)
  Rope,       // a rotated in place                                  (n_heads, head_dim, rope_dim, frequencies, mscale, pairing)
  KvAppend,   // cache rows pos.. = a (keys), b (values)             (kv)
  Attention,  // out = causal GQA attention of a (queries) over kv   (kv, n_heads, n_kv_heads, head_dim)
  Swiglu,     // out = silu(a) * b
  Add,        // out = a + b
  LastRow,    // out = last row of a (all rows when the step says so)
};

const char* op_name(OpKind op);

struct BufferSpec {
  std::string name;
  int64_t width = 0;
};

struct WeightSpec {
  std::string name;
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t group = 0;  // INT4 only
};

struct KvSpec {
  std::string name;
  int64_t kv_dim = 0;
};

struct Node {
  OpKind op = OpKind::Add;
  int out = -1;     // buffer index (-1 for kv_append)
  int a = -1;       // first input buffer (in place for rope)
  int b = -1;       // second input buffer
  int weight = -1;  // weight index
  int kv = -1;      // kv cache index
  float eps = 0.0f;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t rope_dim = 0;
  // RoPE angle of pair p at position t: t * rope_freqs[p]. When rope_freqs is empty it is
  // theta^(-2p / rope_dim) * freq_scale (linear scaling); scaled variants (NTK, YaRN) arrive as
  // explicit frequencies from TypeScript. cos and sin are multiplied by rope_mscale (YaRN's
  // attention factor; 1 otherwise).
  double theta = 10000.0;
  double freq_scale = 1.0;
  std::vector<double> rope_freqs;
  double rope_mscale = 1.0;
  int32_t pairing = 0;  // RopePairing
};

struct Graph {
  std::vector<WeightSpec> weights;
  std::vector<BufferSpec> buffers;
  std::vector<KvSpec> kv_caches;
  std::vector<Node> nodes;
};

// Checks every index, every width against its op, and every parameter (including dtype and
// group constraints of weights). Messages name the node: "node 12 (matmul): ...".
Status validate_graph(const Graph& graph);

// The per-pair frequencies of a rope node (rope_freqs, or the ones theta and freq_scale give).
std::vector<double> rope_frequencies(const Node& node);

// Which buffers sit after a last_row op (and so need only the step's output rows).
std::vector<bool> buffers_after_last_row(const Graph& graph);

}  // namespace lc
