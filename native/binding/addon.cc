// The addon's entry point: registers Engine and Session, and the synchronous
// backendInfo() / cudaProbe() functions; installs the environment cleanup hook.
#include <napi.h>

#include "addon_data.h"
#include "errors.h"
#include "core/cpu_info.h"
#include "core/membench.h"
#include "cpu/kernels.h"
#include "engine_wrap.h"
#include "quantize_binding.h"
#include "session_wrap.h"

#ifdef LC_WITH_CUDA
#include "cuda/device_info.h"
#endif

namespace lc::binding {

namespace {

Napi::Array strings(Napi::Env env, const std::vector<std::string>& list) {
  Napi::Array out = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); i++) out.Set(uint32_t(i), Napi::String::New(env, list[i]));
  return out;
}

Napi::Value JS_backendInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
#ifdef LC_WITH_CUDA
  out.Set("variant", "cuda");
#else
  out.Set("variant", "cpu");
#endif
  out.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));

  const CpuInfo cpu = cpu_info();
  Napi::Object c = Napi::Object::New(env);
  c.Set("model", cpu.model);
  c.Set("arch", cpu.arch);
  c.Set("features", strings(env, cpu.features));
  c.Set("onlineCpus", Napi::Number::New(env, cpu.online_cpus));
  std::vector<std::string> tiers = {"reference", "generic"};
  if (cpu_kernels_avx2() != nullptr) tiers.push_back("avx2");
  if (cpu_kernels_avx512() != nullptr) tiers.push_back("avx512");
  c.Set("kernelTiers", strings(env, tiers));
  std::string why;
  const CpuKernels* best = cpu_kernels_select("auto", &why);
  c.Set("defaultTier", best != nullptr ? best->name : "none");
  out.Set("cpu", c);

  Napi::Object cu = Napi::Object::New(env);
#ifdef LC_WITH_CUDA
  const CudaInfo ci = cuda_info();
  cu.Set("compiled", true);
  cu.Set("driverVersion", Napi::Number::New(env, ci.driver_version));
  cu.Set("runtimeVersion", Napi::Number::New(env, ci.runtime_version));
  cu.Set("architectures", strings(env, ci.architectures));
  Napi::Array devices = Napi::Array::New(env, ci.devices.size());
  for (size_t i = 0; i < ci.devices.size(); i++) {
    const CudaDevice& d = ci.devices[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", d.index);
    o.Set("name", d.name);
    o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    o.Set("totalMemory", Napi::Number::New(env, double(d.total_memory)));
    o.Set("multiprocessors", d.multiprocessors);
    devices.Set(uint32_t(i), o);
  }
  cu.Set("devices", devices);
  if (!ci.error.empty()) cu.Set("error", ci.error);
  // kernels of the compute backend arrive with the CUDA backend; this build can only probe
  cu.Set("computeBackend", false);
#else
  cu.Set("compiled", false);
  cu.Set("devices", Napi::Array::New(env, 0));
  cu.Set("computeBackend", false);
#endif
  out.Set("cuda", cu);
  return out;
}

// cudaProbe(device) -> "" when a kernel ran and gave the right numbers, else the reason.
Napi::Value JS_cudaProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
#ifdef LC_WITH_CUDA
  const int device = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  return Napi::String::New(env, cuda_probe(device));
#else
  return Napi::String::New(env, "this is the CPU build: it has no CUDA code");
#endif
}

// measureMemoryBandwidth(bytes, threads, repeats) -> { readGBps, copyGBps, bytes, threads }.
// Synchronous: it is a benchmark helper for bench/, run on purpose.
Napi::Value JS_measureMemoryBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double bytes = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : double(1 << 30);
  const int threads = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  const int repeats = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 5;
  if (!(bytes >= 4096 && bytes <= 64.0 * (1ull << 30))) throw_invalid(env, "bytes must be between 4 KiB and 64 GiB");
  MemoryBandwidth bw;
  if (!measure_memory_bandwidth(size_t(bytes) / 64 * 64, threads > 0 ? threads : ThreadPool::default_threads(), repeats, &bw)) {
    throw make_error(env, Code::OutOfMemory, "cannot allocate the bandwidth buffers");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("readGBps", bw.read_gbps);
  out.Set("copyGBps", bw.copy_gbps);
  out.Set("bytes", Napi::Number::New(env, double(bw.bytes)));
  out.Set("threads", bw.threads);
  return out;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  Napi::Function engine = EngineWrap::Init(env);
  Napi::Function session = SessionWrap::Init(env);
  data->engine_ctor = Napi::Persistent(engine);
  data->session_ctor = Napi::Persistent(session);
  env.AddCleanupHook([data] { data->dispose_all(); });
  exports.Set("Engine", engine);
  exports.Set("Session", session);
  exports.Set("backendInfo", Napi::Function::New<JS_backendInfo>(env, "backendInfo"));
  exports.Set("cudaProbe", Napi::Function::New<JS_cudaProbe>(env, "cudaProbe"));
  exports.Set("measureMemoryBandwidth", Napi::Function::New<JS_measureMemoryBandwidth>(env, "measureMemoryBandwidth"));
  exports.Set("quantizeRows", Napi::Function::New<JS_quantizeRows>(env, "quantizeRows"));
  return exports;
}

}  // namespace lc::binding

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return lc::binding::Init(env, exports); }

NODE_API_MODULE(llama_cuda, InitAddon)
