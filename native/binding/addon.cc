// The addon's entry point: registers Engine and Session, and the synchronous
// backendInfo() / cudaDriverProbe() / cudaProbe() / cudaMemoryInfo() functions; installs the environment cleanup hook.
// Three variants share this file: 'cpu' (no CUDA code), 'cuda' (nvcc: the CUDA backend on a GPU)
// and 'simt' (the CUDA backend and kernels on the SIMT emulator, for tests).
#include <napi.h>

#include "addon_data.h"
#include "errors.h"
#include "core/cpu_info.h"
#include "core/cuda_driver_probe.h"
#include "core/membench.h"
#include "cpu/kernels.h"
#include "engine_wrap.h"
#include "op_bench.h"
#include "quantize_binding.h"
#include "session_wrap.h"

#ifdef LC_WITH_CUDA
#include "args.h"
#include "cuda/bench.h"
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
#if defined(LC_SIMT_ADDON) && LC_SIMT_ADDON
  out.Set("variant", "simt");
#elif defined(LC_WITH_CUDA)
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
#if defined(LC_CUDA_BACKEND) && LC_CUDA_BACKEND
  cu.Set("computeBackend", true);
#else
  cu.Set("computeBackend", false);
#endif
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

// cudaMemoryInfo(device) -> { free, total } device bytes (cudaMemGetInfo); ERR_CUDA when it fails,
// ERR_UNSUPPORTED in the CPU build.
Napi::Value JS_cudaMemoryInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
#ifdef LC_WITH_CUDA
  const int device = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  uint64_t free_bytes = 0, total_bytes = 0;
  const std::string err = cuda_memory_info(device, &free_bytes, &total_bytes);
  if (!err.empty()) throw make_error(env, Code::Cuda, err);
  Napi::Object out = Napi::Object::New(env);
  out.Set("free", Napi::Number::New(env, double(free_bytes)));
  out.Set("total", Napi::Number::New(env, double(total_bytes)));
  return out;
#else
  throw make_error(env, Code::Unsupported, "this is the CPU build: it has no CUDA code");
#endif
}

#ifdef LC_WITH_CUDA
// cudaBench(spec) -> { ms: number[], bytes, flops, kernel }: native timing for bench/gpu (CUDA
// events, L2 flushed; see native/cuda/bench.h). Synchronous: a benchmark helper, run on purpose.
//   { kind: 'copy', bytes, repeats }   { kind: 'mma', iterations, blocksPerSm, repeats }
//   { kind: 'op', op: 'matmul'|'attention'|'rmsnorm'|'swiglu', dtype, rows, cols, group, n,
//     nHeads, nKvHeads, headDim, ctx, kvType, flushL2, repeats }
Napi::Value JS_cudaBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = get_object(env, info[0], "spec");
  const std::string kind = get_string(o, "kind", "spec");
  const int device = has(o, "device") ? int(get_int(o, "device", "spec", 0, 64)) : 0;
  const int repeats = has(o, "repeats") ? int(get_int(o, "repeats", "spec", 1, 100000)) : 20;
  BenchResult r;
  Status st;
  if (kind == "copy") {
    st = cuda_bench_copy(device, size_t(get_int(o, "bytes", "spec", 16, int64_t(1) << 40)), repeats, &r);
  } else if (kind == "mma") {
    const int iterations = has(o, "iterations") ? int(get_int(o, "iterations", "spec", 1, 1 << 24)) : 4096;
    const int per_sm = has(o, "blocksPerSm") ? int(get_int(o, "blocksPerSm", "spec", 1, 64)) : 4;
    st = cuda_bench_mma(device, iterations, per_sm, repeats, &r);
  } else if (kind == "op") {
    OpBenchSpec spec;
    read_op_shape(env, o, &spec);
    if (has(o, "flushL2")) spec.flush_l2 = o.Get("flushL2").ToBoolean().Value();
    spec.repeats = repeats;
    st = cuda_bench_op(device, spec, &r);
  } else {
    throw_invalid(env, "spec.kind must be copy, mma or op");
  }
  if (!st.ok()) throw_status(env, st);
  Napi::Object out = Napi::Object::New(env);
  Napi::Array ms = Napi::Array::New(env, r.ms.size());
  for (size_t i = 0; i < r.ms.size(); i++) ms.Set(uint32_t(i), Napi::Number::New(env, r.ms[i]));
  out.Set("ms", ms);
  out.Set("bytes", Napi::Number::New(env, r.bytes));
  out.Set("flops", Napi::Number::New(env, r.flops));
  out.Set("kernel", Napi::String::New(env, r.kernel));
  return out;
}
#endif

#if defined(LC_SIMT_ADDON) && LC_SIMT_ADDON
// simtInjectFault() -> the sticky error a trapping kernel left (emulator build only, for tests).
Napi::Value JS_simtInjectFault(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), simt_inject_fault());
}
#endif

// cudaDriverProbe() -> { available, driverVersion, devices: [{ name, computeCapability, totalMemory }],
// library?, error? }: the NVIDIA driver asked directly (core/cuda_driver_probe.h), in every build.
Napi::Value JS_cudaDriverProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const DriverProbe& p = cuda_driver_probe();
  Napi::Object out = Napi::Object::New(env);
  out.Set("available", p.available);
  out.Set("driverVersion", Napi::Number::New(env, p.driver_version));
  Napi::Array devices = Napi::Array::New(env, p.devices.size());
  for (size_t i = 0; i < p.devices.size(); i++) {
    const DriverDevice& d = p.devices[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", d.name);
    o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    o.Set("totalMemory", Napi::Number::New(env, double(d.total_memory)));
    devices.Set(uint32_t(i), o);
  }
  out.Set("devices", devices);
  if (!p.library.empty()) out.Set("library", p.library);
  if (!p.error.empty()) out.Set("error", p.error);
  return out;
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
  exports.Set("cudaDriverProbe", Napi::Function::New<JS_cudaDriverProbe>(env, "cudaDriverProbe"));
  exports.Set("cudaMemoryInfo", Napi::Function::New<JS_cudaMemoryInfo>(env, "cudaMemoryInfo"));
#ifdef LC_WITH_CUDA
  exports.Set("cudaBench", Napi::Function::New<JS_cudaBench>(env, "cudaBench"));
#endif
#if defined(LC_SIMT_ADDON) && LC_SIMT_ADDON
  exports.Set("simtInjectFault", Napi::Function::New<JS_simtInjectFault>(env, "simtInjectFault"));
#endif
  exports.Set("measureMemoryBandwidth", Napi::Function::New<JS_measureMemoryBandwidth>(env, "measureMemoryBandwidth"));
  exports.Set("quantizeRows", Napi::Function::New<JS_quantizeRows>(env, "quantizeRows"));
  exports.Set("benchOp", Napi::Function::New<JS_benchOp>(env, "benchOp"));
  return exports;
}

}  // namespace lc::binding

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return lc::binding::Init(env, exports); }

NODE_API_MODULE(llama_cuda, InitAddon)
