// benchOp(spec) -> { run(iterations) -> seconds, output() -> Float32Array, kernel, threads, copies,
//                    dispose() }
//
//   spec: { op, dtype?, group?, rows?, cols?, width?, n?, nHeads?, nKvHeads?, headDim?, ctx?,
//           kvType?, tier?, threads?, seed?, coldBytes?, a?: Float32Array, b?: Float32Array,
//           weight?: { type, data: Uint8Array } }
//
// The handle's methods close over the native object; dispose() frees its buffers at once (the
// garbage collector does otherwise). run() blocks: the iterations run back to back on the JS
// thread and the CPU pool, with one clock read before and after.
#include "op_bench.h"

#include <cstring>
#include <memory>
#include <string>

#include "args.h"
#include "core/op_bench.h"
#include "errors.h"

namespace lc::binding {

namespace {

std::shared_ptr<CpuOpBench> live(Napi::Env env, const std::shared_ptr<std::shared_ptr<CpuOpBench>>& slot) {
  if (!*slot) throw make_error(env, Code::Disposed, "the op bench was disposed");
  return *slot;
}

}  // namespace

void read_op_shape(Napi::Env env, const Napi::Object& o, OpShape* shape) {
  shape->op = get_string(o, "op", "spec");
  auto dtype = [&](const char* key, DType* out) {
    if (!has(o, key)) return;
    const std::string name = get_string(o, key, "spec");
    if (!dtype_from_name(name, out)) throw_invalid(env, std::string("spec.") + key + ": unknown type \"" + name + "\"");
  };
  dtype("dtype", &shape->dtype);
  dtype("kvType", &shape->kv_dtype);
  auto num = [&](const char* key, int64_t* out) {
    if (has(o, key)) *out = get_int(o, key, "spec", 0, int64_t(1) << 40);
  };
  num("group", &shape->group);
  num("rows", &shape->rows);
  num("cols", &shape->cols);
  num("width", &shape->width);
  num("n", &shape->n);
  num("nHeads", &shape->n_heads);
  num("nKvHeads", &shape->n_kv_heads);
  num("headDim", &shape->head_dim);
  num("ctx", &shape->ctx);
}

Napi::Value JS_benchOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = get_object(env, info[0], "spec");
  CpuOpBenchSpec spec;
  read_op_shape(env, o, &spec);
  if (has(o, "tier")) spec.tier = get_string(o, "tier", "spec");
  if (has(o, "threads")) spec.threads = int(get_int(o, "threads", "spec", 0, 1024));
  if (has(o, "coldBytes")) spec.cold_bytes = uint64_t(get_int(o, "coldBytes", "spec", 0, int64_t(1) << 40));
  if (has(o, "seed")) spec.seed = uint32_t(get_int(o, "seed", "spec", 0, 0xffffffffll));
  if (has(o, "a")) {
    auto a = get_typed<float>(env, o.Get("a"), napi_float32_array, "spec.a");
    spec.a = a.Data();
    spec.a_count = a.ElementLength();
  }
  if (has(o, "b")) {
    auto b = get_typed<float>(env, o.Get("b"), napi_float32_array, "spec.b");
    spec.b = b.Data();
    spec.b_count = b.ElementLength();
  }
  if (has(o, "weight")) {
    Napi::Object w = get_object(env, o.Get("weight"), "spec.weight");
    const std::string type = get_string(w, "type", "spec.weight");
    if (!src_type_from_name(type, &spec.weight_source.type)) {
      throw make_error(env, Code::Unsupported, "spec.weight: tensor type \"" + type + "\" cannot be loaded by this build");
    }
    auto data = get_typed<uint8_t>(env, w.Get("data"), napi_uint8_array, "spec.weight.data");
    spec.weight_source.mem = data.Data();
    spec.weight_source.nbytes = data.ByteLength();
    spec.has_weight_source = true;
  }
  std::unique_ptr<CpuOpBench> bench;
  const Status st = CpuOpBench::create(spec, &bench);
  if (!st.ok()) throw_status(env, st);

  auto slot = std::make_shared<std::shared_ptr<CpuOpBench>>(std::move(bench));
  Napi::Object handle = Napi::Object::New(env);
  handle.Set("kernel", (*slot)->kernel());
  handle.Set("threads", (*slot)->threads());
  handle.Set("copies", (*slot)->copies());
  handle.Set("run", Napi::Function::New(env, [slot](const Napi::CallbackInfo& ci) -> Napi::Value {
    Napi::Env e = ci.Env();
    double iterations = 1;
    if (ci.Length() > 0 && !ci[0].IsUndefined()) {
      if (!ci[0].IsNumber()) throw_invalid(e, "run(iterations): iterations must be a number");
      iterations = ci[0].As<Napi::Number>().DoubleValue();
    }
    if (!(iterations >= 1 && iterations <= 1e9) || iterations != double(int64_t(iterations))) {
      throw_invalid(e, "run(iterations): iterations must be an integer from 1 to 1e9");
    }
    return Napi::Number::New(e, live(e, slot)->run(int64_t(iterations)));
  }, "run"));
  handle.Set("output", Napi::Function::New(env, [slot](const Napi::CallbackInfo& ci) -> Napi::Value {
    Napi::Env e = ci.Env();
    std::shared_ptr<CpuOpBench> b = live(e, slot);
    Napi::Float32Array out = Napi::Float32Array::New(e, b->output_count());
    if (b->output_count() > 0) std::memcpy(out.Data(), b->output(), b->output_count() * sizeof(float));
    return out;
  }, "output"));
  handle.Set("dispose", Napi::Function::New(env, [slot](const Napi::CallbackInfo& ci) -> Napi::Value {
    slot->reset();
    return ci.Env().Undefined();
  }, "dispose"));
  return handle;
}

}  // namespace lc::binding
