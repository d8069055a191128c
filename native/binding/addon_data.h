// Per-environment state (main thread and each worker_thread have their own): the class
// constructors and a registry of engines, disposed by an environment cleanup hook so process
// exit and worker termination release native memory even when JS never called dispose().
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "core/engine.h"

namespace lc::binding {

struct AddonData {
  Napi::FunctionReference engine_ctor;
  Napi::FunctionReference session_ctor;
  std::vector<std::weak_ptr<Engine>> engines;

  void track(const std::shared_ptr<Engine>& engine) {
    std::vector<std::weak_ptr<Engine>> alive;
    for (auto& w : engines) {
      if (!w.expired()) alive.push_back(w);
    }
    alive.push_back(engine);
    engines.swap(alive);
  }

  void dispose_all() {
    for (auto& w : engines) {
      if (auto e = w.lock()) e->dispose();
    }
    engines.clear();
  }
};

inline AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace lc::binding
