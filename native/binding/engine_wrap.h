// JS class Engine: new Engine(spec, options); load(sources, onProgress?) -> Promise;
// createSession(options) -> Session; memoryInfo(); dispose() -> Promise.
#pragma once

#include <napi.h>

#include <memory>

#include "core/engine.h"

namespace lc::binding {

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit EngineWrap(const Napi::CallbackInfo& info);
  ~EngineWrap() override;

  const std::shared_ptr<Engine>& engine() const { return engine_; }
  void set_busy(bool busy) { busy_ = busy; }

 private:
  Napi::Value JS_load(const Napi::CallbackInfo& info);
  Napi::Value JS_createSession(const Napi::CallbackInfo& info);
  Napi::Value JS_memoryInfo(const Napi::CallbackInfo& info);
  Napi::Value JS_describe(const Napi::CallbackInfo& info);
  Napi::Value JS_dispose(const Napi::CallbackInfo& info);

  void check_usable(Napi::Env env) const;

  std::shared_ptr<Engine> engine_;
  bool busy_ = false;  // a load or dispose in flight (JS thread only)
};

}  // namespace lc::binding
