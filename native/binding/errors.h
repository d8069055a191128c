// Status -> JS Error with `.code` (ERR_*). The only place native failures become JS errors.
#pragma once

#include <napi.h>

#include "core/status.h"

namespace lc::binding {

inline Napi::Error make_error(Napi::Env env, Code code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code_name(code)));
  return err;
}

inline Napi::Error make_error(Napi::Env env, const Status& status) { return make_error(env, status.code, status.message); }

// Throws a JS exception (as a C++ Napi::Error under NAPI_CPP_EXCEPTIONS).
[[noreturn]] inline void throw_status(Napi::Env env, const Status& status) { throw make_error(env, status); }

[[noreturn]] inline void throw_invalid(Napi::Env env, const std::string& message) {
  throw make_error(env, Code::InvalidArgument, message);
}

}  // namespace lc::binding
