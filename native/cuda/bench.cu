// Native timing for the GPU benchmarks (see bench.h). Every timed launch sits between two CUDA
// events on one stream; before it, the L2 cache is flushed by writing a buffer twice its size
// (llm.c's benchmark_kernel), so a kernel is measured reading its operands from device memory as
// it does in a model, not from the previous repeat's L2 contents.
//
//   copy_bandwidth_kernel  dst[i] = src[i] over 16-byte vectors, grid-stride: the device's copy
//                          bandwidth, the ceiling of memory-bound kernels (bytes = read + write)
//   mma_peak_kernel        8 independent m16n8k16 bf16 mma.sync per iteration on register
//                          fragments, no memory traffic: the ceiling of tensor-core kernels
//   op benchmarks          the launchers of ops.cuh on random data (codes random, f16/bf16 values
//                          and int4/q8_0 scales kept small and finite)
#include "bench.h"

#include <algorithm>
#include <string>

#include "common.cuh"
#include "core/tensor.h"
#include "ops.cuh"
#include "ptx.cuh"

namespace lc {

namespace {

constexpr int kMmaChains = 8;  // independent accumulators per warp: hides the mma latency

__global__ void copy_bandwidth_kernel(int4* dst, const int4* src, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = src[i];
}

__global__ void mma_peak_kernel(float* out, int iterations) {
  const uint32_t lane = threadIdx.x & 31u;
  // bf16 pairs of small values (about 2^-8): the sums stay finite for any iteration count we run
  const uint32_t base = 0x3b803b80u ^ (lane << 16) ^ lane;
  uint32_t a[4] = {base, base ^ 1u, base ^ 2u, base ^ 3u};
  uint32_t b[2] = {base ^ 4u, base ^ 5u};
  float acc[kMmaChains][4] = {};
  for (int it = 0; it < iterations; it++) {
#pragma unroll
    for (int c = 0; c < kMmaChains; c++) mma_m16n8k16_bf16(acc[c], a, b);
  }
  float s = 0.0f;
#pragma unroll
  for (int c = 0; c < kMmaChains; c++) s += acc[c][0] + acc[c][1] + acc[c][2] + acc[c][3];
  if (s == 1234.5f) out[blockIdx.x] = s;  // never true; keeps the loop
}

// 32-bit words from a hash of the index: random codes and bits without a generator state.
__device__ __forceinline__ uint32_t hash32(uint64_t i, uint32_t seed) {
  uint64_t x = i * 0x9E3779B97F4A7C15ull + seed;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return static_cast<uint32_t>(x);
}

// mode 0: random bits; 1: f32 values in [-1, 1); 2: f16 pairs in +-[2^-6, 2^-5); 3: bf16 pairs
// likewise; 4: the f16 constant pair 0x2000 (2^-7) for int4/q8_0 parameters.
__global__ void fill_kernel(uint32_t* p, int64_t words, uint32_t seed, int mode) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < words; i += stride) {
    const uint32_t h = hash32(uint64_t(i), seed);
    uint32_t v = h;
    if (mode == 1) {
      v = __float_as_uint(float(h >> 8) * (2.0f / 16777216.0f) - 1.0f);
    } else if (mode == 2) {
      v = (h & 0x83ff83ffu) | 0x24002400u;
    } else if (mode == 3) {
      v = (h & 0x807f807fu) | 0x3c803c80u;
    } else if (mode == 4) {
      v = 0x20002000u;
    }
    p[i] = v;
  }
}

struct DeviceBuffer {
  void* ptr = nullptr;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr != nullptr) (void)cudaFree(ptr);
    (void)cudaGetLastError();
  }
  Status alloc(size_t bytes) {
    CUDA_TRY(cudaMalloc(&ptr, std::max<size_t>(bytes, 16)));
    return Status::Ok();
  }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr);
  }
};

struct Stream {
  cudaStream_t s = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  ~Stream() {
    if (start != nullptr) (void)cudaEventDestroy(start);
    if (stop != nullptr) (void)cudaEventDestroy(stop);
    if (s != nullptr) (void)cudaStreamDestroy(s);
    (void)cudaGetLastError();
  }
  Status init() {
    CUDA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CUDA_TRY(cudaEventCreate(&start));
    CUDA_TRY(cudaEventCreate(&stop));
    return Status::Ok();
  }
};

Status fill(void* p, size_t bytes, uint32_t seed, int mode, cudaStream_t stream) {
  const int64_t words = int64_t(bytes / 4);
  if (words == 0) return Status::Ok();
  const unsigned blocks = unsigned(std::min<int64_t>(ceil_div(words, int64_t(256)), 4096));
  LC_LAUNCH(fill_kernel, blocks, 256, 0, stream, static_cast<uint32_t*>(p), words, seed, mode);
  CUDA_TRY(cudaGetLastError());
  return Status::Ok();
}

int sm_count(int device) {
  int sms = 1;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) sms = 1;
  (void)cudaGetLastError();
  return std::max(sms, 1);
}

// Warm-up once, then `repeats` timed runs of `work`, each after an L2 flush when `flush` is set.
template <class Work>
Status time_repeats(Stream& st, void* flush, size_t flush_bytes, int repeats, Work work, std::vector<double>* ms) {
  LC_TRY(work());
  CUDA_TRY(cudaStreamSynchronize(st.s));
  for (int r = 0; r < repeats; r++) {
    if (flush != nullptr) CUDA_TRY(cudaMemsetAsync(flush, r & 0xff, flush_bytes, st.s));
    CUDA_TRY(cudaEventRecord(st.start, st.s));
    LC_TRY(work());
    CUDA_TRY(cudaEventRecord(st.stop, st.s));
    CUDA_TRY(cudaEventSynchronize(st.stop));
    float t = 0;
    CUDA_TRY(cudaEventElapsedTime(&t, st.start, st.stop));
    ms->push_back(double(t));
  }
  return Status::Ok();
}

Status flush_buffer(int device, bool want, DeviceBuffer* buf, size_t* bytes) {
  *bytes = 0;
  if (!want) return Status::Ok();
  int l2 = 0;
  CUDA_TRY(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
  *bytes = size_t(std::max(l2, 1 << 20)) * 2;
  return buf->alloc(*bytes);
}

size_t elem_bytes(DType t) { return t == DType::F32 ? 4 : 2; }

}  // namespace

Status cuda_bench_copy(int device, size_t bytes, int repeats, BenchResult* out) {
  CUDA_TRY(cudaSetDevice(device));
  bytes = bytes / 16 * 16;
  if (bytes == 0 || repeats < 1) return invalid_argument("cuda_bench_copy: bytes >= 16 and repeats >= 1");
  Stream st;
  LC_TRY(st.init());
  DeviceBuffer src, dst;
  LC_TRY(src.alloc(bytes));
  LC_TRY(dst.alloc(bytes));
  LC_TRY(fill(src.ptr, bytes, 1, 0, st.s));
  const int64_t n = int64_t(bytes / 16);
  const unsigned blocks = unsigned(std::min<int64_t>(ceil_div(n, int64_t(256)), int64_t(sm_count(device)) * 8));
  out->kernel = "copy_bandwidth_kernel<<<" + std::to_string(blocks) + ", 256>>>";
  out->bytes = 2.0 * double(bytes);
  return time_repeats(st, nullptr, 0, repeats, [&]() -> Status {
    LC_LAUNCH(copy_bandwidth_kernel, blocks, 256, 0, st.s, dst.as<int4>(), src.as<const int4>(), n);
    CUDA_TRY(cudaGetLastError());
    return Status::Ok();
  }, &out->ms);
}

Status cuda_bench_mma(int device, int iterations, int blocks_per_sm, int repeats, BenchResult* out) {
  CUDA_TRY(cudaSetDevice(device));
  if (iterations < 1 || blocks_per_sm < 1 || repeats < 1) return invalid_argument("cuda_bench_mma: arguments must be positive");
  Stream st;
  LC_TRY(st.init());
  const int blocks = sm_count(device) * blocks_per_sm;
  DeviceBuffer sink;
  LC_TRY(sink.alloc(size_t(blocks) * sizeof(float)));
  out->kernel = "mma_peak_kernel<<<" + std::to_string(blocks) + ", 128>>> (" + std::to_string(kMmaChains) +
                " chains x " + std::to_string(iterations) + " iterations)";
  out->flops = double(blocks) * 4.0 * double(iterations) * kMmaChains * 2.0 * 16 * 8 * 16;
  return time_repeats(st, nullptr, 0, repeats, [&]() -> Status {
    LC_LAUNCH(mma_peak_kernel, blocks, 128, 0, st.s, sink.as<float>(), iterations);
    CUDA_TRY(cudaGetLastError());
    return Status::Ok();
  }, &out->ms);
}

Status cuda_bench_op(int device, const OpBenchSpec& spec, BenchResult* out) {
  CUDA_TRY(cudaSetDevice(device));
  if (spec.repeats < 1 || spec.n < 1) return invalid_argument("cuda_bench_op: repeats and n must be positive");
  Stream st;
  LC_TRY(st.init());
  DeviceBuffer flush;
  size_t flush_bytes = 0;
  LC_TRY(flush_buffer(device, spec.flush_l2, &flush, &flush_bytes));
  void* flush_ptr = spec.flush_l2 ? flush.ptr : nullptr;

  if (spec.op == "matmul") {
    if (spec.rows < 1 || spec.cols < 1) return invalid_argument("cuda_bench_op matmul: rows and cols must be positive");
    Weight w;
    w.dtype = spec.dtype;
    w.rows = spec.rows;
    w.cols = spec.cols;
    w.group = spec.dtype == DType::INT4 ? spec.group : (spec.dtype == DType::Q8_0 ? kQ8Group : 0);
    if ((w.dtype == DType::INT4 && (w.group <= 0 || w.cols % w.group != 0)) || (w.dtype == DType::Q8_0 && w.cols % kQ8Group != 0)) {
      return invalid_argument("cuda_bench_op matmul: cols must be a multiple of the weight's group");
    }
    w.nbytes = weight_bytes(w.dtype, w.rows, w.cols, w.group);
    DeviceBuffer wbuf, x, y, ws;
    LC_TRY(wbuf.alloc(w.nbytes));
    w.data = wbuf.as<uint8_t>();
    const size_t codes = w.dtype == DType::Q8_0 ? size_t(w.rows * w.cols) : w.dtype == DType::INT4 ? size_t(w.rows * w.cols / 2) : 0;
    const int mode = w.dtype == DType::F32 ? 1 : w.dtype == DType::F16 ? 2 : w.dtype == DType::BF16 ? 3 : 0;
    if (codes == 0) {
      LC_TRY(fill(w.data, w.nbytes, 7, mode, st.s));
    } else {
      LC_TRY(fill(w.data, codes, 7, 0, st.s));
      LC_TRY(fill(w.data + codes, w.nbytes - codes, 7, 4, st.s));
    }
    LC_TRY(x.alloc(size_t(spec.n * spec.cols) * 4));
    LC_TRY(y.alloc(size_t(spec.n * spec.rows) * 4));
    LC_TRY(fill(x.ptr, size_t(spec.n * spec.cols) * 4, 11, 1, st.s));
    const size_t ws_bytes = cuda::matmul_workspace_bytes(spec.n, spec.cols, spec.rows);
    LC_TRY(ws.alloc(ws_bytes));
    out->kernel = std::string("matmul_cuda ") + dtype_name(w.dtype) + " " + std::to_string(spec.rows) + "x" +
                  std::to_string(spec.cols) + " n=" + std::to_string(spec.n);
    out->bytes = double(w.nbytes) + 4.0 * double(spec.n) * double(spec.cols + spec.rows);
    out->flops = 2.0 * double(spec.n) * double(spec.rows) * double(spec.cols);
    const cuda::Workspace workspace{ws.ptr, ws_bytes};
    return time_repeats(st, flush_ptr, flush_bytes, spec.repeats, [&]() {
      return cuda::matmul_cuda(y.as<float>(), x.as<const float>(), w, spec.n, workspace, st.s);
    }, &out->ms);
  }

  if (spec.op == "attention") {
    if (spec.n_heads < 1 || spec.n_kv_heads < 1 || spec.head_dim < 1 || spec.ctx < spec.n) {
      return invalid_argument("cuda_bench_op attention: heads, head_dim >= 1 and ctx >= n");
    }
    const int64_t kv_dim = spec.n_kv_heads * spec.head_dim, q_dim = spec.n_heads * spec.head_dim;
    const size_t cache_bytes = size_t(spec.ctx * kv_dim) * elem_bytes(spec.kv_dtype);
    DeviceBuffer k, v, q, o, pos, ws;
    LC_TRY(k.alloc(cache_bytes));
    LC_TRY(v.alloc(cache_bytes));
    const int kv_mode = spec.kv_dtype == DType::F32 ? 1 : spec.kv_dtype == DType::F16 ? 2 : 3;
    LC_TRY(fill(k.ptr, cache_bytes, 3, kv_mode, st.s));
    LC_TRY(fill(v.ptr, cache_bytes, 5, kv_mode, st.s));
    LC_TRY(q.alloc(size_t(spec.n * q_dim) * 4));
    LC_TRY(o.alloc(size_t(spec.n * q_dim) * 4));
    LC_TRY(fill(q.ptr, size_t(spec.n * q_dim) * 4, 9, 1, st.s));
    LC_TRY(pos.alloc(4));
    const int32_t first = int32_t(spec.ctx - spec.n);
    CUDA_TRY(cudaMemcpyAsync(pos.ptr, &first, 4, cudaMemcpyHostToDevice, st.s));
    CUDA_TRY(cudaStreamSynchronize(st.s));
    const size_t ws_bytes = cuda::attention_workspace_bytes(spec.n, spec.n_heads, spec.head_dim, spec.ctx);
    LC_TRY(ws.alloc(ws_bytes));
    const KvLayer cache{spec.kv_dtype, kv_dim, spec.ctx, k.ptr, v.ptr};
    out->kernel = "attention_cuda heads " + std::to_string(spec.n_heads) + "/" + std::to_string(spec.n_kv_heads) + " hd " +
                  std::to_string(spec.head_dim) + " ctx " + std::to_string(spec.ctx) + " n=" + std::to_string(spec.n) + " kv " +
                  dtype_name(spec.kv_dtype);
    // bytes: the K and V rows up to the last position (ctx rows), read once per step (the point of
    // the GQA grouping and the tiling), plus q and out; flops: q.k and p.v over the causal pairs
    double pairs = 0;
    for (int64_t i = 0; i < spec.n; i++) pairs += double(first + i + 1);
    out->bytes = 2.0 * double(spec.ctx) * double(kv_dim) * double(elem_bytes(spec.kv_dtype)) + 8.0 * double(spec.n * q_dim);
    out->flops = 4.0 * pairs * double(q_dim);
    const cuda::Workspace workspace{ws.ptr, ws_bytes};
    return time_repeats(st, flush_ptr, flush_bytes, spec.repeats, [&]() {
      return cuda::attention_cuda(o.as<float>(), q.as<const float>(), cache, spec.n, pos.as<const int32_t>(), spec.n_heads,
                                  spec.n_kv_heads, spec.head_dim, workspace, st.s);
    }, &out->ms);
  }

  if (spec.op == "rmsnorm" || spec.op == "swiglu") {
    const size_t count = size_t(spec.n * spec.cols);
    if (count == 0) return invalid_argument("cuda_bench_op: n and cols must be positive");
    DeviceBuffer a, b, o;
    LC_TRY(a.alloc(count * 4));
    LC_TRY(b.alloc(count * 4));
    LC_TRY(o.alloc(count * 4));
    LC_TRY(fill(a.ptr, count * 4, 13, 1, st.s));
    LC_TRY(fill(b.ptr, count * 4, 17, 1, st.s));
    if (spec.op == "rmsnorm") {
      out->kernel = "rmsnorm_cuda " + std::to_string(spec.n) + "x" + std::to_string(spec.cols);
      out->bytes = 8.0 * double(count) + 4.0 * double(spec.cols);
      return time_repeats(st, flush_ptr, flush_bytes, spec.repeats, [&]() {
        return cuda::rmsnorm_cuda(o.as<float>(), a.as<const float>(), b.as<const float>(), spec.n, spec.cols, 1e-5f, st.s);
      }, &out->ms);
    }
    out->kernel = "swiglu_cuda " + std::to_string(count);
    out->bytes = 12.0 * double(count);
    return time_repeats(st, flush_ptr, flush_bytes, spec.repeats, [&]() {
      return cuda::swiglu_cuda(o.as<float>(), a.as<const float>(), b.as<const float>(), int64_t(count), st.s);
    }, &out->ms);
  }
  return invalid_argument("cuda_bench_op: unknown op \"" + spec.op + "\" (matmul, attention, rmsnorm, swiglu)");
}

}  // namespace lc
