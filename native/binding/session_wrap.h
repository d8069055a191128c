// JS class Session (made by Engine.createSession): run(request) -> Promise<{ outputRows }>;
// dispose() -> Promise. One call in flight at a time: a second is rejected with ERR_BUSY.
#pragma once

#include <napi.h>

#include <memory>

#include "core/engine.h"

namespace lc::binding {

class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object NewInstance(Napi::Env env, Napi::Object engine_js, std::unique_ptr<Session> session);
  explicit SessionWrap(const Napi::CallbackInfo& info);

  Session* session() const { return session_.get(); }
  void set_busy(bool busy) { busy_ = busy; }

 private:
  Napi::Value JS_run(const Napi::CallbackInfo& info);
  Napi::Value JS_memoryInfo(const Napi::CallbackInfo& info);
  Napi::Value JS_stats(const Napi::CallbackInfo& info);
  Napi::Value JS_dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<Session> session_;
  Napi::ObjectReference engine_js_;  // keeps the Engine object alive while this session is
  bool busy_ = false;
  bool disposed_ = false;
};

}  // namespace lc::binding
