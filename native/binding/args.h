// Readers for JS values arriving at the binding. TypeScript validates first; these checks
// make sure a malformed call from anywhere is an ERR_INVALID_ARG error, never a crash.
#pragma once

#include <napi.h>

#include <cmath>
#include <string>

#include "errors.h"

namespace lc::binding {

inline Napi::Object get_object(Napi::Env env, const Napi::Value& v, const std::string& what) {
  if (!v.IsObject()) throw_invalid(env, what + " must be an object");
  return v.As<Napi::Object>();
}

inline std::string get_string(Napi::Object obj, const char* key, const std::string& what) {
  Napi::Value v = obj.Get(key);
  if (!v.IsString()) throw_invalid(obj.Env(), what + "." + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

inline bool has(Napi::Object obj, const char* key) {
  Napi::Value v = obj.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}

inline double get_number(Napi::Object obj, const char* key, const std::string& what) {
  Napi::Value v = obj.Get(key);
  if (!v.IsNumber()) throw_invalid(obj.Env(), what + "." + key + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw_invalid(obj.Env(), what + "." + key + " must be finite");
  return d;
}

inline int64_t get_int(Napi::Object obj, const char* key, const std::string& what, int64_t lo, int64_t hi) {
  const double d = get_number(obj, key, what);
  if (d != std::floor(d) || d < double(lo) || d > double(hi)) {
    throw_invalid(obj.Env(), what + "." + key + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return int64_t(d);
}

inline Napi::Array get_array(Napi::Object obj, const char* key, const std::string& what) {
  Napi::Value v = obj.Get(key);
  if (!v.IsArray()) throw_invalid(obj.Env(), what + "." + key + " must be an array");
  return v.As<Napi::Array>();
}

template <typename T>
Napi::TypedArrayOf<T> get_typed(Napi::Env env, const Napi::Value& v, napi_typedarray_type type, const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    const char* name = type == napi_float32_array ? "Float32Array" : type == napi_int32_array ? "Int32Array" : "Uint8Array";
    throw_invalid(env, what + " must be a " + std::string(name));
  }
  return v.As<Napi::TypedArrayOf<T>>();
}

}  // namespace lc::binding
