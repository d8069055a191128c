// One AsyncWorker per async method. Execute() runs off the JS thread and touches no JS
// values; every worker keeps its JS owner (and borrowed typed arrays) alive with references
// until it settles its promise, and turns a failed Status into an Error with .code.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <vector>

#include "core/engine.h"
#include "errors.h"

namespace lc::binding {

// Base: a Status-returning job that settles a promise.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, Napi::Object owner)
      : Napi::AsyncWorker(env, "llama-cuda"), deferred_(Napi::Promise::Deferred::New(env)) {
    owner_ = Napi::Persistent(owner);
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  virtual Status run() = 0;
  virtual Napi::Value result(Napi::Env env) { return env.Undefined(); }
  virtual void settle() {}  // on the JS thread, before the promise settles (clear busy flags)

  void Execute() override {
    try {
      status_ = run();
    } catch (const std::bad_alloc&) {
      status_ = out_of_memory("out of host memory");
    } catch (const std::exception& e) {
      status_ = internal_error(e.what());
    }
    if (!status_.ok()) SetError(status_.message);
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    settle();
    deferred_.Resolve(result(Env()));
  }
  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    settle();
    deferred_.Reject(make_error(Env(), status_).Value());
  }

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;
  Status status_;
};

class FunctionWorker final : public PromiseWorker {
 public:
  FunctionWorker(Napi::Env env, Napi::Object owner, std::function<Status()> job, std::function<void()> on_settle)
      : PromiseWorker(env, owner), job_(std::move(job)), on_settle_(std::move(on_settle)) {}

 protected:
  Status run() override { return job_(); }
  void settle() override {
    if (on_settle_) on_settle_();
  }

 private:
  std::function<Status()> job_;
  std::function<void()> on_settle_;
};

}  // namespace lc::binding
