#include "engine_wrap.h"

#include <chrono>

#include "addon_data.h"
#include "args.h"
#include "session_wrap.h"
#include "spec.h"
#include "workers.h"

namespace lc::binding {

namespace {

struct LoadProgress {
  uint64_t done;
  uint64_t total;
};

// Reads every weight (off the JS thread), reporting progress at most every 50 ms.
class LoadWorker final : public Napi::AsyncProgressWorker<LoadProgress> {
 public:
  LoadWorker(Napi::Env env, Napi::Object owner, EngineWrap* wrap, std::vector<NamedSource> sources,
             std::vector<Napi::ObjectReference> keep_alive, Napi::Function on_progress)
      : Napi::AsyncProgressWorker<LoadProgress>(env, "llama-cuda:load"),
        deferred_(Napi::Promise::Deferred::New(env)),
        wrap_(wrap),
        sources_(std::move(sources)),
        keep_alive_(std::move(keep_alive)) {
    owner_ = Napi::Persistent(owner);
    if (!on_progress.IsEmpty()) on_progress_ = Napi::Persistent(on_progress);
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute(const ExecutionProgress& progress) override {
    auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    try {
      status_ = wrap_->engine()->load(sources_, [&](uint64_t done, uint64_t total) {
        const auto now = std::chrono::steady_clock::now();
        if (done == total || now - last >= std::chrono::milliseconds(50)) {
          last = now;
          LoadProgress p{done, total};
          progress.Send(&p, 1);
        }
      });
    } catch (const std::bad_alloc&) {
      status_ = out_of_memory("out of host memory while loading weights");
    } catch (const std::exception& e) {
      status_ = internal_error(e.what());
    }
    if (!status_.ok()) SetError(status_.message);
  }
  void OnProgress(const LoadProgress* data, size_t count) override {
    if (count == 0 || on_progress_.IsEmpty()) return;
    Napi::HandleScope scope(Env());
    // a throwing progress callback must not take the load down with it
    try {
      on_progress_.Call({Napi::Number::New(Env(), double(data->done)), Napi::Number::New(Env(), double(data->total))});
    } catch (const Napi::Error&) {
    }
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    wrap_->set_busy(false);
    deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    wrap_->set_busy(false);
    deferred_.Reject(make_error(Env(), status_).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;
  Napi::FunctionReference on_progress_;
  EngineWrap* wrap_;
  std::vector<NamedSource> sources_;
  std::vector<Napi::ObjectReference> keep_alive_;
  Status status_;
};

}  // namespace

Napi::Function EngineWrap::Init(Napi::Env env) {
  return DefineClass(env, "Engine",
                     {
                         InstanceMethod<&EngineWrap::JS_load>("load"),
                         InstanceMethod<&EngineWrap::JS_createSession>("createSession"),
                         InstanceMethod<&EngineWrap::JS_memoryInfo>("memoryInfo"),
                         InstanceMethod<&EngineWrap::JS_describe>("describe"),
                         InstanceMethod<&EngineWrap::JS_dispose>("dispose"),
                     });
}

EngineWrap::EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
  Napi::Env env = info.Env();
  if (!info.IsConstructCall()) throw_invalid(env, "Engine must be called with new");
  Napi::Object spec = get_object(env, info[0], "spec");
  Graph graph = parse_graph(env, spec);
  EngineOptions opts;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    Napi::Object o = get_object(env, info[1], "options");
    if (has(o, "device")) opts.device = get_string(o, "device", "options");
    if (has(o, "threads")) opts.threads = int(get_int(o, "threads", "options", 0, 1024));
    if (has(o, "cpuKernels")) opts.cpu_kernels = get_string(o, "cpuKernels", "options");
  }
  Status st = Engine::create(std::move(graph), opts, &engine_);
  if (!st.ok()) throw_status(env, st);
  addon_data(env).track(engine_);
}

EngineWrap::~EngineWrap() {
  // Sessions hold the engine too; the weights go when the last holder does (or at dispose()).
  engine_.reset();
}

void EngineWrap::check_usable(Napi::Env env) const {
  if (engine_->disposed()) throw make_error(env, Code::Disposed, "the engine was disposed");
  if (busy_) throw make_error(env, Code::Busy, "the engine is busy (a load or dispose is in flight)");
}

Napi::Value EngineWrap::JS_load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_usable(env);
  if (!info[0].IsArray()) throw_invalid(env, "load(sources): sources must be an array");
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<NamedSource> sources;
  std::vector<Napi::ObjectReference> keep_alive;
  const Graph& g = engine_->graph();
  for (uint32_t i = 0; i < list.Length(); i++) {
    const std::string what = "sources[" + std::to_string(i) + "]";
    Napi::Object o = get_object(env, list.Get(i), what);
    NamedSource ns;
    ns.weight = weight_index(env, g, get_string(o, "weight", what));
    const std::string type = get_string(o, "type", what);
    if (!src_type_from_name(type, &ns.source.type)) {
      throw make_error(env, Code::Unsupported, what + ": tensor type \"" + type + "\" cannot be loaded by this build");
    }
    ns.source.nbytes = uint64_t(get_int(o, "nbytes", what, 0, int64_t(1) << 50));
    if (has(o, "data")) {
      auto data = get_typed<uint8_t>(env, o.Get("data"), napi_uint8_array, what + ".data");
      if (data.ByteLength() != ns.source.nbytes) throw_invalid(env, what + ".data length differs from nbytes");
      ns.source.mem = data.Data();
      keep_alive.push_back(Napi::Persistent(data.As<Napi::Object>()));
    } else {
      ns.source.file = get_string(o, "file", what);
      ns.source.offset = uint64_t(get_int(o, "offset", what, 0, int64_t(1) << 52));
    }
    sources.push_back(std::move(ns));
  }
  Napi::Function on_progress;
  if (info.Length() > 1 && info[1].IsFunction()) on_progress = info[1].As<Napi::Function>();
  auto* worker = new LoadWorker(env, info.This().As<Napi::Object>(), this, std::move(sources), std::move(keep_alive),
                                on_progress);
  busy_ = true;
  worker->Queue();
  return worker->promise();
}

Napi::Value EngineWrap::JS_createSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_usable(env);
  Napi::Object o = get_object(env, info[0], "options");
  SessionOptions opts;
  opts.max_seq_len = get_int(o, "maxSeqLen", "options", 1, int64_t(1) << 30);
  opts.max_tokens = get_int(o, "maxTokens", "options", 1, int64_t(1) << 30);
  if (has(o, "maxOutputRows")) opts.max_output_rows = get_int(o, "maxOutputRows", "options", 1, int64_t(1) << 30);
  if (has(o, "kvType")) {
    const std::string kv = get_string(o, "kvType", "options");
    if (kv == "f32") {
      opts.kv_dtype = DType::F32;
    } else if (kv == "f16") {
      opts.kv_dtype = DType::F16;
    } else if (kv == "bf16") {
      opts.kv_dtype = DType::BF16;  // CUDA sessions only (Engine::create_session checks)
    } else {
      throw_invalid(env, "options.kvType must be \"f32\", \"f16\" or \"bf16\" (CUDA)");
    }
  }
  std::unique_ptr<Session> session;
  Status st = engine_->create_session(opts, &session);
  if (!st.ok()) throw_status(env, st);
  return SessionWrap::NewInstance(env, info.This().As<Napi::Object>(), std::move(session));
}

Napi::Value EngineWrap::JS_memoryInfo(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("weightBytes", Napi::Number::New(info.Env(), double(engine_->weight_bytes())));
  Napi::Object per = Napi::Object::New(info.Env());
  const Graph& g = engine_->graph();
  for (size_t i = 0; i < g.weights.size(); i++) {
    per.Set(g.weights[i].name, Napi::Number::New(info.Env(), double(engine_->weights()[i].nbytes)));
  }
  out.Set("weights", per);
  out.Set("backend", Napi::String::New(info.Env(), engine_->backend().name()));
  return out;
}

Napi::Value EngineWrap::JS_describe(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), engine_->backend().describe());
}

Napi::Value EngineWrap::JS_dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (busy_) throw make_error(env, Code::Busy, "the engine is busy (a load is in flight)");
  std::shared_ptr<Engine> engine = engine_;
  auto* worker = new FunctionWorker(
      env, info.This().As<Napi::Object>(),
      [engine] {
        engine->dispose();  // waits for running steps
        return Status::Ok();
      },
      [this] { busy_ = false; });
  busy_ = true;
  worker->Queue();
  return worker->promise();
}

}  // namespace lc::binding
