// GraphSpec (a plain JS object built by lib/model/transformer.ts) -> lc::Graph.
// Names are resolved to indices here; unknown names and bad values are ERR_INVALID_ARG.
#pragma once

#include <napi.h>

#include "core/graph.h"

namespace lc::binding {

Graph parse_graph(Napi::Env env, Napi::Object spec);

// Index of a named buffer / weight, or throws ERR_INVALID_ARG naming it.
int buffer_index(Napi::Env env, const Graph& g, const std::string& name);
int weight_index(Napi::Env env, const Graph& g, const std::string& name);

}  // namespace lc::binding
