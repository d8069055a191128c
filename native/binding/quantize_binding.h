// quantizeRows(src, srcType, dstType): ggml block conversion for `llama-cuda quantize` (and the
// tests of the block decoders). Synchronous: one call converts one chunk of a tensor.
#pragma once

#include <napi.h>

namespace lc::binding {

Napi::Value JS_quantizeRows(const Napi::CallbackInfo& info);

}  // namespace lc::binding
