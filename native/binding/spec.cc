#include "spec.h"

#include <unordered_map>

#include "args.h"

namespace lc::binding {

namespace {

template <typename Spec>
int find_named(Napi::Env env, const std::vector<Spec>& list, const std::string& name, const char* kind) {
  for (size_t i = 0; i < list.size(); i++) {
    if (list[i].name == name) return int(i);
  }
  throw_invalid(env, std::string("unknown ") + kind + " \"" + name + "\"");
}

OpKind parse_op(Napi::Env env, const std::string& name, size_t index) {
  static const std::unordered_map<std::string, OpKind> ops = {
      {"embed", OpKind::Embed},         {"rmsnorm", OpKind::RmsNorm}, {"matmul", OpKind::Matmul},
      {"rope", OpKind::Rope},           {"kv_append", OpKind::KvAppend}, {"attention", OpKind::Attention},
      {"swiglu", OpKind::Swiglu},       {"add", OpKind::Add},         {"last_row", OpKind::LastRow},
  };
  auto it = ops.find(name);
  if (it == ops.end()) throw_invalid(env, "node " + std::to_string(index) + ": unknown op \"" + name + "\"");
  return it->second;
}

}  // namespace

int buffer_index(Napi::Env env, const Graph& g, const std::string& name) { return find_named(env, g.buffers, name, "buffer"); }
int weight_index(Napi::Env env, const Graph& g, const std::string& name) { return find_named(env, g.weights, name, "weight"); }

Graph parse_graph(Napi::Env env, Napi::Object spec) {
  Graph g;
  constexpr int64_t kBig = int64_t(1) << 40;

  Napi::Array weights = get_array(spec, "weights", "spec");
  for (uint32_t i = 0; i < weights.Length(); i++) {
    const std::string what = "spec.weights[" + std::to_string(i) + "]";
    Napi::Object w = get_object(env, weights.Get(i), what);
    WeightSpec ws;
    ws.name = get_string(w, "name", what);
    const std::string dtype = get_string(w, "dtype", what);
    if (!dtype_from_name(dtype, &ws.dtype)) throw_invalid(env, what + ": unsupported weight dtype \"" + dtype + "\"");
    Napi::Array shape = get_array(w, "shape", what);
    if (shape.Length() != 2 || !shape.Get(0u).IsNumber() || !shape.Get(1u).IsNumber()) {
      throw_invalid(env, what + ".shape must be [rows, cols]");
    }
    ws.rows = shape.Get(0u).As<Napi::Number>().Int64Value();
    ws.cols = shape.Get(1u).As<Napi::Number>().Int64Value();
    if (has(w, "group")) ws.group = get_int(w, "group", what, 0, 1 << 20);
    g.weights.push_back(ws);
  }

  Napi::Array buffers = get_array(spec, "buffers", "spec");
  for (uint32_t i = 0; i < buffers.Length(); i++) {
    const std::string what = "spec.buffers[" + std::to_string(i) + "]";
    Napi::Object b = get_object(env, buffers.Get(i), what);
    g.buffers.push_back({get_string(b, "name", what), get_int(b, "width", what, 1, kBig)});
  }

  Napi::Array kv = get_array(spec, "kvCaches", "spec");
  for (uint32_t i = 0; i < kv.Length(); i++) {
    const std::string what = "spec.kvCaches[" + std::to_string(i) + "]";
    Napi::Object k = get_object(env, kv.Get(i), what);
    g.kv_caches.push_back({get_string(k, "name", what), get_int(k, "kvDim", what, 1, kBig)});
  }

  Napi::Array nodes = get_array(spec, "nodes", "spec");
  for (uint32_t i = 0; i < nodes.Length(); i++) {
    const std::string what = "spec.nodes[" + std::to_string(i) + "]";
    Napi::Object o = get_object(env, nodes.Get(i), what);
    Node n;
    n.op = parse_op(env, get_string(o, "op", what), i);
    if (has(o, "out")) n.out = buffer_index(env, g, get_string(o, "out", what));
    if (has(o, "a")) n.a = buffer_index(env, g, get_string(o, "a", what));
    if (has(o, "b")) n.b = buffer_index(env, g, get_string(o, "b", what));
    if (has(o, "weight")) n.weight = weight_index(env, g, get_string(o, "weight", what));
    if (has(o, "kv")) n.kv = find_named(env, g.kv_caches, get_string(o, "kv", what), "kv cache");
    if (has(o, "eps")) n.eps = float(get_number(o, "eps", what));
    if (has(o, "nHeads")) n.n_heads = get_int(o, "nHeads", what, 1, 1 << 20);
    if (has(o, "nKvHeads")) n.n_kv_heads = get_int(o, "nKvHeads", what, 1, 1 << 20);
    if (has(o, "headDim")) n.head_dim = get_int(o, "headDim", what, 1, 1 << 20);
    if (has(o, "ropeDim")) n.rope_dim = get_int(o, "ropeDim", what, 1, 1 << 20);
    if (has(o, "theta")) n.theta = get_number(o, "theta", what);
    if (has(o, "freqScale")) n.freq_scale = get_number(o, "freqScale", what);
    if (has(o, "freqs")) {
      Napi::Array freqs = get_array(o, "freqs", what);
      for (uint32_t k = 0; k < freqs.Length(); k++) {
        if (!freqs.Get(k).IsNumber()) throw_invalid(env, what + ".freqs must be numbers");
        n.rope_freqs.push_back(freqs.Get(k).As<Napi::Number>().DoubleValue());
      }
    }
    if (has(o, "mscale")) n.rope_mscale = get_number(o, "mscale", what);
    if (has(o, "pairing")) {
      const std::string p = get_string(o, "pairing", what);
      if (p == "interleaved") {
        n.pairing = 0;
      } else if (p == "half") {
        n.pairing = 1;
      } else {
        throw_invalid(env, what + ": unknown rope pairing \"" + p + "\" (interleaved or half)");
      }
    }
    g.nodes.push_back(n);
  }
  return g;
}

}  // namespace lc::binding
