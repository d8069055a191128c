#include "graph.h"

#include <cmath>
#include <string>

namespace lc {

const char* op_name(OpKind op) {
  switch (op) {
    case OpKind::Embed: return "embed";
    case OpKind::RmsNorm: return "rmsnorm";
    case OpKind::Matmul: return "matmul";
    case OpKind::Rope: return "rope";
    case OpKind::KvAppend: return "kv_append";
    case OpKind::Attention: return "attention";
    case OpKind::Swiglu: return "swiglu";
    case OpKind::Add: return "add";
    case OpKind::LastRow: return "last_row";
  }
  return "?";
}

namespace {

constexpr int64_t kMaxWidth = int64_t(1) << 24;

Status check_weight_spec(const WeightSpec& w) {
  const std::string where = "weight \"" + w.name + "\": ";
  if (w.rows <= 0 || w.cols <= 0 || w.rows > kMaxWidth * 4 || w.cols > kMaxWidth) {
    return invalid_argument(where + "impossible shape " + std::to_string(w.rows) + "x" + std::to_string(w.cols));
  }
  if (w.dtype == DType::Q8_0 && w.cols % kQ8Group != 0) {
    return invalid_argument(where + "q8_0 needs cols divisible by 32, got " + std::to_string(w.cols));
  }
  if (w.dtype == DType::NF4 && w.cols % 64 != 0) {
    return invalid_argument(where + "nf4 needs cols divisible by 64 (its block), got " + std::to_string(w.cols));
  }
  if (w.dtype == DType::INT4) {
    if (w.group != 32 && w.group != 64 && w.group != 128) {
      return invalid_argument(where + "unsupported int4 group size: " + std::to_string(w.group) + " (32, 64 or 128)");
    }
    if (w.cols % w.group != 0) {
      return invalid_argument(where + "int4 cols " + std::to_string(w.cols) + " not divisible by group " +
                              std::to_string(w.group));
    }
  }
  return Status::Ok();
}

struct NodeChecker {
  const Graph& g;
  size_t index;
  const Node& node;

  Status fail(const std::string& msg) const {
    return invalid_argument("node " + std::to_string(index) + " (" + op_name(node.op) + "): " + msg);
  }
  Status need_buffer(int b, const char* role) const {
    if (b < 0 || size_t(b) >= g.buffers.size()) return fail(std::string("missing or unknown ") + role + " buffer");
    return Status::Ok();
  }
  int64_t width(int b) const { return g.buffers[size_t(b)].width; }
  Status same_width(int x, int y, const char* what) const {
    if (width(x) != width(y)) {
      return fail(std::string(what) + ": widths " + std::to_string(width(x)) + " and " + std::to_string(width(y)) +
                  " differ");
    }
    return Status::Ok();
  }
  Status need_weight() const {
    if (node.weight < 0 || size_t(node.weight) >= g.weights.size()) return fail("missing or unknown weight");
    return Status::Ok();
  }
  Status need_kv() const {
    if (node.kv < 0 || size_t(node.kv) >= g.kv_caches.size()) return fail("missing or unknown kv cache");
    return Status::Ok();
  }
  Status heads(int64_t width_expected_heads, int64_t heads) const {
    if (node.head_dim <= 0 || heads <= 0 || heads * node.head_dim != width_expected_heads) {
      return fail("heads x head_dim = " + std::to_string(heads) + " x " + std::to_string(node.head_dim) +
                  " does not match width " + std::to_string(width_expected_heads));
    }
    return Status::Ok();
  }

  Status check() const {
    const Node& n = node;
    switch (n.op) {
      case OpKind::Embed: {
        LC_TRY(need_buffer(n.out, "output"));
        LC_TRY(need_weight());
        const WeightSpec& w = g.weights[size_t(n.weight)];
        if (w.cols != width(n.out)) return fail("table width " + std::to_string(w.cols) + " != output width " + std::to_string(width(n.out)));
        return Status::Ok();
      }
      case OpKind::RmsNorm: {
        LC_TRY(need_buffer(n.out, "output"));
        LC_TRY(need_buffer(n.a, "input"));
        LC_TRY(need_weight());
        LC_TRY(same_width(n.out, n.a, "output and input"));
        const WeightSpec& w = g.weights[size_t(n.weight)];
        if (w.dtype != DType::F32 || w.rows != 1 || w.cols != width(n.a)) return fail("weight must be f32 [" + std::to_string(width(n.a)) + "]");
        if (!(n.eps > 0.0f) || n.eps > 1.0f) return fail("eps must be in (0, 1]");
        return Status::Ok();
      }
      case OpKind::Matmul: {
        LC_TRY(need_buffer(n.out, "output"));
        LC_TRY(need_buffer(n.a, "input"));
        LC_TRY(need_weight());
        if (n.out == n.a) return fail("output must not alias the input");
        const WeightSpec& w = g.weights[size_t(n.weight)];
        if (w.cols != width(n.a) || w.rows != width(n.out)) {
          return fail("weight \"" + w.name + "\" is " + std::to_string(w.rows) + "x" + std::to_string(w.cols) +
                      " but maps width " + std::to_string(width(n.a)) + " to " + std::to_string(width(n.out)));
        }
        return Status::Ok();
      }
      case OpKind::Rope: {
        LC_TRY(need_buffer(n.a, "input"));
        LC_TRY(heads(width(n.a), n.n_heads));
        if (n.rope_dim <= 0 || n.rope_dim % 2 != 0 || n.rope_dim > n.head_dim) {
          return fail("rope_dim " + std::to_string(n.rope_dim) + " must be even and at most head_dim");
        }
        if (!(n.theta > 1.0) || !(n.freq_scale > 0.0)) return fail("theta must be > 1 and freq_scale > 0");
        if (!n.rope_freqs.empty()) {
          if (int64_t(n.rope_freqs.size()) != n.rope_dim / 2) {
            return fail("rope frequencies: " + std::to_string(n.rope_freqs.size()) + " given, rope_dim / 2 = " +
                        std::to_string(n.rope_dim / 2) + " expected");
          }
          for (double f : n.rope_freqs) {
            if (!(f > 0.0) || !std::isfinite(f)) return fail("rope frequencies must be finite and positive");
          }
        }
        if (!(n.rope_mscale > 0.0) || !std::isfinite(n.rope_mscale)) return fail("rope mscale must be finite and positive");
        if (n.pairing != 0 && n.pairing != 1) return fail("unknown pairing");
        return Status::Ok();
      }
      case OpKind::KvAppend: {
        LC_TRY(need_buffer(n.a, "key"));
        LC_TRY(need_buffer(n.b, "value"));
        LC_TRY(need_kv());
        const int64_t kv_dim = g.kv_caches[size_t(n.kv)].kv_dim;
        if (width(n.a) != kv_dim || width(n.b) != kv_dim) return fail("key/value widths must equal kv_dim " + std::to_string(kv_dim));
        return Status::Ok();
      }
      case OpKind::Attention: {
        LC_TRY(need_buffer(n.out, "output"));
        LC_TRY(need_buffer(n.a, "query"));
        LC_TRY(need_kv());
        if (n.out == n.a) return fail("output must not alias the queries");
        LC_TRY(same_width(n.out, n.a, "output and queries"));
        LC_TRY(heads(width(n.a), n.n_heads));
        if (n.n_kv_heads <= 0 || n.n_heads % n.n_kv_heads != 0) {
          return fail("n_heads " + std::to_string(n.n_heads) + " is not a multiple of n_kv_heads " + std::to_string(n.n_kv_heads));
        }
        if (g.kv_caches[size_t(n.kv)].kv_dim != n.n_kv_heads * n.head_dim) return fail("kv_dim != n_kv_heads x head_dim");
        return Status::Ok();
      }
      case OpKind::Swiglu:
      case OpKind::Add: {
        LC_TRY(need_buffer(n.out, "output"));
        LC_TRY(need_buffer(n.a, "first input"));
        LC_TRY(need_buffer(n.b, "second input"));
        LC_TRY(same_width(n.out, n.a, "output and first input"));
        LC_TRY(same_width(n.a, n.b, "inputs"));
        return Status::Ok();
      }
      case OpKind::LastRow: {
        LC_TRY(need_buffer(n.out, "output"));
        LC_TRY(need_buffer(n.a, "input"));
        if (n.out == n.a) return fail("output must not alias the input");
        LC_TRY(same_width(n.out, n.a, "output and input"));
        return Status::Ok();
      }
    }
    return fail("unknown op");
  }
};

}  // namespace

Status validate_graph(const Graph& g) {
  for (const BufferSpec& b : g.buffers) {
    if (b.width <= 0 || b.width > kMaxWidth) return invalid_argument("buffer \"" + b.name + "\": impossible width " + std::to_string(b.width));
  }
  for (const WeightSpec& w : g.weights) LC_TRY(check_weight_spec(w));
  for (const KvSpec& k : g.kv_caches) {
    if (k.kv_dim <= 0 || k.kv_dim > kMaxWidth) return invalid_argument("kv cache \"" + k.name + "\": impossible kv_dim");
  }
  if (g.nodes.empty()) return invalid_argument("the graph has no nodes");
  for (size_t i = 0; i < g.nodes.size(); i++) LC_TRY((NodeChecker{g, i, g.nodes[i]}.check()));
  return Status::Ok();
}

std::vector<double> rope_frequencies(const Node& node) {
  if (!node.rope_freqs.empty()) return node.rope_freqs;
  std::vector<double> freqs(size_t(node.rope_dim / 2));
  for (size_t p = 0; p < freqs.size(); p++) {
    freqs[p] = std::pow(node.theta, -2.0 * double(p) / double(node.rope_dim)) * node.freq_scale;
  }
  return freqs;
}

std::vector<bool> buffers_after_last_row(const Graph& g) {
  // A buffer is "after" when every write to it comes from a last_row op or from an op whose
  // inputs are all after. Buffers written both before and after a last_row are not.
  std::vector<int> writes(g.buffers.size(), 0), late_writes(g.buffers.size(), 0);
  std::vector<bool> late(g.buffers.size(), false);
  for (const Node& n : g.nodes) {
    if (n.out < 0) continue;
    bool is_late = n.op == OpKind::LastRow;
    if (!is_late && n.op != OpKind::Embed) {
      is_late = n.a >= 0 && late[size_t(n.a)] && (n.b < 0 || late[size_t(n.b)]);
    }
    writes[size_t(n.out)]++;
    if (is_late) late_writes[size_t(n.out)]++;
    late[size_t(n.out)] = writes[size_t(n.out)] == late_writes[size_t(n.out)];
  }
  return late;
}

}  // namespace lc
