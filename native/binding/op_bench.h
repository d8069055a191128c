// benchOp(spec): one CPU op on prepared buffers, timed natively (core/op_bench.h), for the
// microbenchmarks in lib/bench/. Synchronous on purpose: a benchmark runs it on the JS thread.
#pragma once

#include <napi.h>

namespace lc::binding {

Napi::Value JS_benchOp(const Napi::CallbackInfo& info);

}  // namespace lc::binding
