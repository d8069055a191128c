// benchOp(spec): one CPU op on prepared buffers, timed natively (core/op_bench.h), for the
// microbenchmarks in lib/bench/. Synchronous on purpose: a benchmark runs it on the JS thread.
#pragma once

#include <napi.h>

#include "core/op_shape.h"

namespace lc::binding {

Napi::Value JS_benchOp(const Napi::CallbackInfo& info);

// Reads the fields of OpShape a spec object sets (op, dtype, kvType, group, rows, cols, width, n,
// nHeads, nKvHeads, headDim, ctx); unset fields keep `shape`'s values. Throws on bad values.
void read_op_shape(Napi::Env env, const Napi::Object& o, OpShape* shape);

}  // namespace lc::binding
