// Status: how every layer below binding/ reports failure. Kernels and backends never throw
// into N-API and never abort; they return a Status, and binding/errors.h turns it into a JS
// Error whose `code` is the ERR_* name below (the same table as lib/errors.ts).
#pragma once

#include <string>
#include <utility>

namespace lc {

enum class Code {
  Ok = 0,
  InvalidArgument,  // ERR_INVALID_ARG: a shape, option or spec that cannot work
  ModelFormat,      // ERR_MODEL_FORMAT: a model file that is truncated or inconsistent
  OutOfMemory,      // ERR_OUT_OF_MEMORY: host or device allocation failed
  Io,               // ERR_IO: open/read failed
  Cuda,             // ERR_CUDA: a CUDA runtime error
  Busy,             // ERR_BUSY: a second call while one is in flight on the same object
  Disposed,         // ERR_DISPOSED: use after dispose()
  ContextFull,      // ERR_CONTEXT_FULL: positions beyond the KV cache
  Unsupported,      // ERR_UNSUPPORTED: a valid request this build cannot run
  Internal,         // ERR_INTERNAL: a bug
};

inline const char* code_name(Code code) {
  switch (code) {
    case Code::Ok: return "OK";
    case Code::InvalidArgument: return "ERR_INVALID_ARG";
    case Code::ModelFormat: return "ERR_MODEL_FORMAT";
    case Code::OutOfMemory: return "ERR_OUT_OF_MEMORY";
    case Code::Io: return "ERR_IO";
    case Code::Cuda: return "ERR_CUDA";
    case Code::Busy: return "ERR_BUSY";
    case Code::Disposed: return "ERR_DISPOSED";
    case Code::ContextFull: return "ERR_CONTEXT_FULL";
    case Code::Unsupported: return "ERR_UNSUPPORTED";
    case Code::Internal: return "ERR_INTERNAL";
  }
  return "ERR_INTERNAL";
}

struct [[nodiscard]] Status {
  Code code = Code::Ok;
  std::string message;

  Status() = default;
  Status(Code c, std::string msg) : code(c), message(std::move(msg)) {}

  bool ok() const { return code == Code::Ok; }
  static Status Ok() { return Status(); }
};

inline Status invalid_argument(std::string msg) { return Status(Code::InvalidArgument, std::move(msg)); }
inline Status model_format(std::string msg) { return Status(Code::ModelFormat, std::move(msg)); }
inline Status out_of_memory(std::string msg) { return Status(Code::OutOfMemory, std::move(msg)); }
inline Status io_error(std::string msg) { return Status(Code::Io, std::move(msg)); }
inline Status unsupported(std::string msg) { return Status(Code::Unsupported, std::move(msg)); }
inline Status internal_error(std::string msg) { return Status(Code::Internal, std::move(msg)); }

}  // namespace lc

// Early return on failure: LC_TRY(load_tensor(...));
#define LC_TRY(expr)                     \
  do {                                   \
    ::lc::Status lc_try_status_ = (expr); \
    if (!lc_try_status_.ok()) return lc_try_status_; \
  } while (0)
