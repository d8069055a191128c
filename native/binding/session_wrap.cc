#include "session_wrap.h"

#include "addon_data.h"
#include "args.h"
#include "engine_wrap.h"
#include "spec.h"
#include "workers.h"

namespace lc::binding {

namespace {

// Runs one step off the JS thread. Borrowed typed arrays stay referenced until it settles.
class StepWorker final : public PromiseWorker {
 public:
  StepWorker(Napi::Env env, Napi::Object owner, SessionWrap* wrap, std::shared_ptr<Session> session, StepRequest req,
             std::vector<Napi::ObjectReference> keep_alive)
      : PromiseWorker(env, owner),
        wrap_(wrap),
        session_(std::move(session)),
        req_(std::move(req)),
        keep_alive_(std::move(keep_alive)) {}

 protected:
  Status run() override { return session_->run(req_, &result_); }
  void settle() override { wrap_->set_busy(false); }
  Napi::Value result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    Napi::Array rows = Napi::Array::New(env, result_.output_rows.size());
    for (size_t i = 0; i < result_.output_rows.size(); i++) rows.Set(uint32_t(i), Napi::Number::New(env, double(result_.output_rows[i])));
    out.Set("outputRows", rows);
    return out;
  }

 private:
  SessionWrap* wrap_;
  std::shared_ptr<Session> session_;
  StepRequest req_;
  StepResult result_;
  std::vector<Napi::ObjectReference> keep_alive_;
};

}  // namespace

Napi::Function SessionWrap::Init(Napi::Env env) {
  return DefineClass(env, "Session",
                     {
                         InstanceMethod<&SessionWrap::JS_run>("run"),
                         InstanceMethod<&SessionWrap::JS_memoryInfo>("memoryInfo"),
                         InstanceMethod<&SessionWrap::JS_stats>("stats"),
                         InstanceMethod<&SessionWrap::JS_dispose>("dispose"),
                     });
}

Napi::Object SessionWrap::NewInstance(Napi::Env env, Napi::Object engine_js, std::unique_ptr<Session> session) {
  Napi::External<Session> ext = Napi::External<Session>::New(env, session.release());
  return addon_data(env).session_ctor.New({engine_js, ext});
}

SessionWrap::SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[1].IsExternal()) {
    throw_invalid(env, "Session objects are made by Engine.createSession()");
  }
  session_.reset(info[1].As<Napi::External<Session>>().Data());
  engine_js_ = Napi::Persistent(info[0].As<Napi::Object>());
}

Napi::Value SessionWrap::JS_run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed_) throw make_error(env, Code::Disposed, "the session was disposed");
  if (busy_) throw make_error(env, Code::Busy, "the session is busy: await the previous step first");
  Napi::Object o = get_object(env, info[0], "request");
  EngineWrap* engine = EngineWrap::Unwrap(engine_js_.Value());
  const Graph& graph = engine->engine()->graph();

  StepRequest req;
  std::vector<Napi::ObjectReference> keep_alive;
  req.pos = get_int(o, "pos", "request", 0, int64_t(1) << 40);
  if (has(o, "tokens")) {
    auto tokens = get_typed<int32_t>(env, o.Get("tokens"), napi_int32_array, "request.tokens");
    req.tokens = tokens.Data();
    req.n_tokens = int64_t(tokens.ElementLength());
    if (req.n_tokens == 0) throw_invalid(env, "request.tokens is empty");
    keep_alive.push_back(Napi::Persistent(tokens.As<Napi::Object>()));
  }
  if (has(o, "allRows")) req.all_rows = o.Get("allRows").ToBoolean().Value();
  auto read_io = [&](const char* key, bool is_input) {
    if (!has(o, key)) return;
    Napi::Array list = get_array(o, key, "request");
    for (uint32_t i = 0; i < list.Length(); i++) {
      const std::string what = std::string("request.") + key + "[" + std::to_string(i) + "]";
      Napi::Object item = get_object(env, list.Get(i), what);
      StepIo io;
      io.buffer = buffer_index(env, graph, get_string(item, "buffer", what));
      auto data = get_typed<float>(env, item.Get("data"), napi_float32_array, what + ".data");
      const int64_t width = graph.buffers[size_t(io.buffer)].width;
      const int64_t len = int64_t(data.ElementLength());
      if (is_input && (len == 0 || len % width != 0)) {
        throw_invalid(env, what + ": " + std::to_string(len) + " values are not whole rows of width " + std::to_string(width));
      }
      io.data = data.Data();
      io.rows = len / width;
      keep_alive.push_back(Napi::Persistent(data.As<Napi::Object>()));
      (is_input ? req.inputs : req.outputs).push_back(io);
    }
  };
  read_io("inputs", true);
  read_io("outputs", false);

  auto* worker = new StepWorker(env, info.This().As<Napi::Object>(), this, session_, std::move(req), std::move(keep_alive));
  busy_ = true;
  worker->Queue();
  return worker->promise();
}

Napi::Value SessionWrap::JS_memoryInfo(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("bytes", Napi::Number::New(info.Env(), double(session_ ? session_->bytes() : 0)));
  return out;
}

// stats() -> { steps, graphCaptures, graphLaunches }: how the steps ran (CUDA graphs on CUDA).
Napi::Value SessionWrap::JS_stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const SessionCounters c = session_ ? session_->counters() : SessionCounters{};
  Napi::Object out = Napi::Object::New(env);
  out.Set("steps", Napi::Number::New(env, double(c.steps)));
  out.Set("graphCaptures", Napi::Number::New(env, double(c.graph_captures)));
  out.Set("graphLaunches", Napi::Number::New(env, double(c.graph_launches)));
  return out;
}

Napi::Value SessionWrap::JS_dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (busy_) throw make_error(env, Code::Busy, "the session is busy: await the step before disposing");
  disposed_ = true;
  std::shared_ptr<Session> session = session_;
  auto* worker = new FunctionWorker(
      env, info.This().As<Napi::Object>(),
      [session] {
        session->dispose();
        return Status::Ok();
      },
      nullptr);
  worker->Queue();
  return worker->promise();
}

}  // namespace lc::binding
