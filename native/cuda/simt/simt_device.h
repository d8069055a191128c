// SIMT emulator, device side: what a .cu kernel sees when g++ compiles it for the CPU.
//
// Included by simt.h AFTER the real CUDA headers (cuda_runtime.h, cuda_fp16.h, cuda_bf16.h), whose
// host paths already give dim3/uint3/float4, __half/__nv_bfloat16 and their conversions. This file
// then turns the CUDA keywords into plain C++ and provides, as ordinary functions:
//   - the builtin variables threadIdx, blockIdx, blockDim, gridDim (globals the scheduler sets
//     before it resumes each thread) and warpSize;
//   - __syncthreads(_count/_and/_or): a block barrier;
//   - warp collectives __shfl(_up/_down/_xor)_sync, __ballot_sync, __any_sync, __all_sync,
//     __reduce_*_sync, __syncwarp: they exchange values only once every lane named in the mask has
//     arrived (no implicit warp-synchronous execution);
//   - atomics (plain read-modify-write: one OS thread runs a launch), fences, __ldg/__ldcs/...,
//     and the math intrinsics kernels use (__expf, __fdividef, rsqrtf, __dp4a, ...).
// Barriers and collectives are scheduling points: the calling thread (a fiber) is suspended until
// its group completes. A group that can never complete is reported as a launch error (see
// scheduler.cc) with the kernel name and what every thread was doing.
#pragma once

#include <math.h>

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

// ---- scheduler services (implemented in scheduler.cc) ----------------------------------------
namespace lc_simt {

enum class BarrierOp : int { Sync, Count, And, Or };
// Block barrier; returns the count/and/or of pred over the block (1 for Sync).
int block_barrier(BarrierOp op, int pred, const char* file, int line);

// Warp collectives. `kind` names the intrinsic: every lane of a group must call the same kind with
// the same mask. in/out point at the calling lane's payload (see scheduler.cc for each layout).
enum class WarpKind : int {
  ShflIdx, ShflUp, ShflDown, ShflBfly,
  Ballot, Any, All, SyncWarp,
  ReduceAdd, ReduceMinU, ReduceMinS, ReduceMaxU, ReduceMaxS, ReduceAnd, ReduceOr, ReduceXor,
  MmaBf16, MmaF16,
  Ldmatrix1, Ldmatrix2, Ldmatrix4, Ldmatrix1T, Ldmatrix2T, Ldmatrix4T,
};
void warp_collective(WarpKind kind, unsigned mask, const void* in, void* out, const char* file, int line);

// Payloads of the collectives (in / out of each lane):
struct ShflIn {   // out: uint64_t
  uint64_t bits;  // the lane's value (up to 8 bytes)
  int b;          // srcLane / delta / laneMask
  int width;
};
// Ballot/Any/All/SyncWarp: in int (predicate), out unsigned. Reduce*: in unsigned, out unsigned.
struct MmaIn {    // out: float d[4]; layouts of the PTX ISA (see ptx.cuh)
  uint32_t a[4];
  uint32_t b[2];
  float c[4];
};
// Ldmatrix*: in `const void*` (this lane's row address), out uint32_t r[4].

unsigned active_mask();       // lanes of the caller's warp that exist and have not exited
void yield();                 // __nanosleep: lets the other threads of the block run
void* dynamic_smem();         // this launch's dynamic shared memory
[[noreturn]] void trap(const char* what, const char* file, int line);  // fails the launch
// Fails the launch with cudaErrorMisalignedAddress when p is not aligned to `align` bytes.
void check_aligned(const void* p, size_t align, const char* what, const char* file, int line);

// ptx.cuh emulation
void cp_async(void* dst, const void* src, int cp_size, int src_size, const char* file, int line);
void cp_async_commit(const char* file, int line);
void cp_async_wait(int n, const char* file, int line);

template <class T>
inline uint64_t to_bits(const T& v) {
  static_assert(sizeof(T) <= 8, "warp shuffles move at most 8 bytes per lane");
  uint64_t b = 0;
  std::memcpy(&b, static_cast<const void*>(&v), sizeof(T));
  return b;
}
template <class T>
inline T from_bits(uint64_t b) {
  T v;
  std::memcpy(static_cast<void*>(&v), &b, sizeof(T));
  return v;
}

template <class T>
inline T shfl(WarpKind kind, unsigned mask, const T& var, int b, int width, const char* file, int line) {
  ShflIn in{to_bits(var), b, width};
  uint64_t out = 0;
  warp_collective(kind, mask, &in, &out, file, line);
  return from_bits<T>(out);
}

inline unsigned vote(WarpKind kind, unsigned mask, int pred, const char* file, int line) {
  int in = pred != 0;
  unsigned out = 0;
  warp_collective(kind, mask, &in, &out, file, line);
  return out;
}

inline unsigned reduce(WarpKind kind, unsigned mask, unsigned value, const char* file, int line) {
  unsigned out = 0;
  warp_collective(kind, mask, &value, &out, file, line);
  return out;
}

}  // namespace lc_simt

// ---- keywords ---------------------------------------------------------------------------------
// Kernels are plain functions; __shared__ variables are function-local statics (one block runs at
// a time, so one copy is enough). `extern __shared__` does not work: use LC_DYNAMIC_SMEM.
#undef __global__
#define __global__
#undef __device__
#define __device__
#undef __host__
#define __host__
#undef __shared__
#define __shared__ static
#undef __constant__
#define __constant__
#undef __managed__
#define __managed__
#undef __grid_constant__
#define __grid_constant__
#undef __launch_bounds__
#define __launch_bounds__(...)

// ---- builtin variables ------------------------------------------------------------------------
extern uint3 threadIdx;  // set by the scheduler before each thread is resumed
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;
constexpr int warpSize = 32;

// Site of the caller (file/line), for deadlock reports.
#define LC_SIMT_SITE_DECL const char *lc_site_file = __builtin_FILE(), int lc_site_line = __builtin_LINE()
#define LC_SIMT_SITE lc_site_file, lc_site_line

// ---- barriers ---------------------------------------------------------------------------------
inline void __syncthreads(LC_SIMT_SITE_DECL) { lc_simt::block_barrier(lc_simt::BarrierOp::Sync, 1, LC_SIMT_SITE); }
inline int __syncthreads_count(int pred, LC_SIMT_SITE_DECL) {
  return lc_simt::block_barrier(lc_simt::BarrierOp::Count, pred, LC_SIMT_SITE);
}
inline int __syncthreads_and(int pred, LC_SIMT_SITE_DECL) {
  return lc_simt::block_barrier(lc_simt::BarrierOp::And, pred, LC_SIMT_SITE);
}
inline int __syncthreads_or(int pred, LC_SIMT_SITE_DECL) {
  return lc_simt::block_barrier(lc_simt::BarrierOp::Or, pred, LC_SIMT_SITE);
}

// ---- warp collectives -------------------------------------------------------------------------
template <class T>
inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize, LC_SIMT_SITE_DECL) {
  return lc_simt::shfl(lc_simt::WarpKind::ShflIdx, mask, var, srcLane, width, LC_SIMT_SITE);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned int delta, int width = warpSize, LC_SIMT_SITE_DECL) {
  return lc_simt::shfl(lc_simt::WarpKind::ShflUp, mask, var, static_cast<int>(delta), width, LC_SIMT_SITE);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned int delta, int width = warpSize, LC_SIMT_SITE_DECL) {
  return lc_simt::shfl(lc_simt::WarpKind::ShflDown, mask, var, static_cast<int>(delta), width, LC_SIMT_SITE);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize, LC_SIMT_SITE_DECL) {
  return lc_simt::shfl(lc_simt::WarpKind::ShflBfly, mask, var, laneMask, width, LC_SIMT_SITE);
}
inline unsigned __ballot_sync(unsigned mask, int pred, LC_SIMT_SITE_DECL) {
  return lc_simt::vote(lc_simt::WarpKind::Ballot, mask, pred, LC_SIMT_SITE);
}
inline int __any_sync(unsigned mask, int pred, LC_SIMT_SITE_DECL) {
  return static_cast<int>(lc_simt::vote(lc_simt::WarpKind::Any, mask, pred, LC_SIMT_SITE));
}
inline int __all_sync(unsigned mask, int pred, LC_SIMT_SITE_DECL) {
  return static_cast<int>(lc_simt::vote(lc_simt::WarpKind::All, mask, pred, LC_SIMT_SITE));
}
inline void __syncwarp(unsigned mask = 0xffffffffu, LC_SIMT_SITE_DECL) {
  lc_simt::vote(lc_simt::WarpKind::SyncWarp, mask, 0, LC_SIMT_SITE);
}
// Not a synchronization point. In the emulator: the lanes of the warp that exist and have not
// exited (on a GPU it depends on convergence; do not build masks for collectives from it).
inline unsigned __activemask() { return lc_simt::active_mask(); }

inline unsigned __reduce_add_sync(unsigned mask, unsigned value, LC_SIMT_SITE_DECL) {
  return lc_simt::reduce(lc_simt::WarpKind::ReduceAdd, mask, value, LC_SIMT_SITE);
}
inline int __reduce_add_sync(unsigned mask, int value, LC_SIMT_SITE_DECL) {
  return static_cast<int>(lc_simt::reduce(lc_simt::WarpKind::ReduceAdd, mask, static_cast<unsigned>(value), LC_SIMT_SITE));
}
inline unsigned __reduce_min_sync(unsigned mask, unsigned value, LC_SIMT_SITE_DECL) {
  return lc_simt::reduce(lc_simt::WarpKind::ReduceMinU, mask, value, LC_SIMT_SITE);
}
inline int __reduce_min_sync(unsigned mask, int value, LC_SIMT_SITE_DECL) {
  return static_cast<int>(lc_simt::reduce(lc_simt::WarpKind::ReduceMinS, mask, static_cast<unsigned>(value), LC_SIMT_SITE));
}
inline unsigned __reduce_max_sync(unsigned mask, unsigned value, LC_SIMT_SITE_DECL) {
  return lc_simt::reduce(lc_simt::WarpKind::ReduceMaxU, mask, value, LC_SIMT_SITE);
}
inline int __reduce_max_sync(unsigned mask, int value, LC_SIMT_SITE_DECL) {
  return static_cast<int>(lc_simt::reduce(lc_simt::WarpKind::ReduceMaxS, mask, static_cast<unsigned>(value), LC_SIMT_SITE));
}
inline unsigned __reduce_and_sync(unsigned mask, unsigned value, LC_SIMT_SITE_DECL) {
  return lc_simt::reduce(lc_simt::WarpKind::ReduceAnd, mask, value, LC_SIMT_SITE);
}
inline unsigned __reduce_or_sync(unsigned mask, unsigned value, LC_SIMT_SITE_DECL) {
  return lc_simt::reduce(lc_simt::WarpKind::ReduceOr, mask, value, LC_SIMT_SITE);
}
inline unsigned __reduce_xor_sync(unsigned mask, unsigned value, LC_SIMT_SITE_DECL) {
  return lc_simt::reduce(lc_simt::WarpKind::ReduceXor, mask, value, LC_SIMT_SITE);
}

// ---- fences, sleep, traps ---------------------------------------------------------------------
inline void __threadfence_block() { std::atomic_signal_fence(std::memory_order_seq_cst); }
inline void __threadfence() { std::atomic_signal_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __nanosleep(unsigned) { lc_simt::yield(); }
[[noreturn]] inline void __trap(LC_SIMT_SITE_DECL) { lc_simt::trap("__trap()", LC_SIMT_SITE); }
[[noreturn]] inline void __brkpt(LC_SIMT_SITE_DECL) { lc_simt::trap("__brkpt()", LC_SIMT_SITE); }
long long clock64();  // nanoseconds of a steady clock

// ---- loads and stores with cache hints: plain accesses here --------------------------------------
template <class T> inline T __ldg(const T* p) { return *p; }
template <class T> inline T __ldcg(const T* p) { return *p; }
template <class T> inline T __ldca(const T* p) { return *p; }
template <class T> inline T __ldcs(const T* p) { return *p; }
template <class T> inline T __ldlu(const T* p) { return *p; }
template <class T> inline T __ldcv(const T* p) { return *p; }
template <class T> inline void __stwb(T* p, T v) { *p = v; }
template <class T> inline void __stcg(T* p, T v) { *p = v; }
template <class T> inline void __stcs(T* p, T v) { *p = v; }
template <class T> inline void __stwt(T* p, T v) { *p = v; }

// ---- atomics (one OS thread runs a launch: plain read-modify-write is atomic here) ---------------
#define LC_SIMT_ATOMIC(name, T, expr)       \
  inline T name(T* address, T val) {       \
    T old = *address;                      \
    *address = (expr);                     \
    return old;                            \
  }
LC_SIMT_ATOMIC(atomicAdd, int, old + val)
LC_SIMT_ATOMIC(atomicAdd, unsigned int, old + val)
LC_SIMT_ATOMIC(atomicAdd, unsigned long long, old + val)
LC_SIMT_ATOMIC(atomicAdd, float, old + val)
LC_SIMT_ATOMIC(atomicAdd, double, old + val)
LC_SIMT_ATOMIC(atomicAdd, __half, __float2half(__half2float(old) + __half2float(val)))
LC_SIMT_ATOMIC(atomicAdd, __nv_bfloat16, __float2bfloat16(__bfloat162float(old) + __bfloat162float(val)))
LC_SIMT_ATOMIC(atomicAdd, __half2, __hadd2(old, val))
LC_SIMT_ATOMIC(atomicAdd, __nv_bfloat162, __hadd2(old, val))
LC_SIMT_ATOMIC(atomicSub, int, old - val)
LC_SIMT_ATOMIC(atomicSub, unsigned int, old - val)
LC_SIMT_ATOMIC(atomicExch, int, val)
LC_SIMT_ATOMIC(atomicExch, unsigned int, val)
LC_SIMT_ATOMIC(atomicExch, unsigned long long, val)
LC_SIMT_ATOMIC(atomicExch, float, val)
LC_SIMT_ATOMIC(atomicMax, int, old > val ? old : val)
LC_SIMT_ATOMIC(atomicMax, unsigned int, old > val ? old : val)
LC_SIMT_ATOMIC(atomicMax, long long, old > val ? old : val)
LC_SIMT_ATOMIC(atomicMax, unsigned long long, old > val ? old : val)
LC_SIMT_ATOMIC(atomicMin, int, old < val ? old : val)
LC_SIMT_ATOMIC(atomicMin, unsigned int, old < val ? old : val)
LC_SIMT_ATOMIC(atomicMin, long long, old < val ? old : val)
LC_SIMT_ATOMIC(atomicMin, unsigned long long, old < val ? old : val)
LC_SIMT_ATOMIC(atomicAnd, int, old & val)
LC_SIMT_ATOMIC(atomicAnd, unsigned int, old & val)
LC_SIMT_ATOMIC(atomicAnd, unsigned long long, old & val)
LC_SIMT_ATOMIC(atomicOr, int, old | val)
LC_SIMT_ATOMIC(atomicOr, unsigned int, old | val)
LC_SIMT_ATOMIC(atomicOr, unsigned long long, old | val)
LC_SIMT_ATOMIC(atomicXor, int, old ^ val)
LC_SIMT_ATOMIC(atomicXor, unsigned int, old ^ val)
LC_SIMT_ATOMIC(atomicXor, unsigned long long, old ^ val)
LC_SIMT_ATOMIC(atomicInc, unsigned int, old >= val ? 0u : old + 1u)
LC_SIMT_ATOMIC(atomicDec, unsigned int, (old == 0u || old > val) ? val : old - 1u)
#undef LC_SIMT_ATOMIC

template <class T>
inline T lc_simt_atomic_cas(T* address, T compare, T val) {
  T old = *address;
  if (old == compare) *address = val;
  return old;
}
inline int atomicCAS(int* a, int c, int v) { return lc_simt_atomic_cas(a, c, v); }
inline unsigned int atomicCAS(unsigned int* a, unsigned int c, unsigned int v) { return lc_simt_atomic_cas(a, c, v); }
inline unsigned long long atomicCAS(unsigned long long* a, unsigned long long c, unsigned long long v) {
  return lc_simt_atomic_cas(a, c, v);
}
inline unsigned short atomicCAS(unsigned short* a, unsigned short c, unsigned short v) { return lc_simt_atomic_cas(a, c, v); }

// Scoped variants (_block, _system) behave like the plain ones.
#define LC_SIMT_SCOPED(name)                                                              \
  template <class T, class... V>                                                          \
  inline T name##_block(T* a, V... v) { return name(a, v...); }                           \
  template <class T, class... V>                                                          \
  inline T name##_system(T* a, V... v) { return name(a, v...); }
LC_SIMT_SCOPED(atomicAdd)
LC_SIMT_SCOPED(atomicSub)
LC_SIMT_SCOPED(atomicExch)
LC_SIMT_SCOPED(atomicMax)
LC_SIMT_SCOPED(atomicMin)
LC_SIMT_SCOPED(atomicAnd)
LC_SIMT_SCOPED(atomicOr)
LC_SIMT_SCOPED(atomicXor)
LC_SIMT_SCOPED(atomicCAS)
#undef LC_SIMT_SCOPED

// ---- math intrinsics the host headers do not provide ----------------------------------------------
inline float __expf(float x) { return ::expf(x); }
inline float __exp10f(float x) { return ::exp10f(x); }
inline float __logf(float x) { return ::logf(x); }
inline float __log2f(float x) { return ::log2f(x); }
inline float __log10f(float x) { return ::log10f(x); }
inline float __sinf(float x) { return ::sinf(x); }
inline float __cosf(float x) { return ::cosf(x); }
inline float __tanf(float x) { return ::tanf(x); }
inline void __sincosf(float x, float* s, float* c) { ::sincosf(x, s, c); }
inline float __powf(float x, float y) { return ::powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float fdividef(float x, float y) { return x / y; }
inline float rsqrtf(float x) { return 1.0f / ::sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / ::sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / ::sqrtf(x); }
inline float __fsqrt_rn(float x) { return ::sqrtf(x); }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fdiv_rn(float x, float y) { return x / y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fsub_rn(float x, float y) { return x - y; }
inline float __fmaf_rn(float x, float y, float z) { return ::fmaf(x, y, z); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }

inline int __float_as_int(float x) { int i; std::memcpy(&i, &x, 4); return i; }
inline unsigned int __float_as_uint(float x) { unsigned int i; std::memcpy(&i, &x, 4); return i; }
inline float __int_as_float(int i) { float x; std::memcpy(&x, &i, 4); return x; }
inline float __uint_as_float(unsigned int i) { float x; std::memcpy(&x, &i, 4); return x; }
inline long long __double_as_longlong(double x) { long long i; std::memcpy(&i, &x, 8); return i; }
inline double __longlong_as_double(long long i) { double x; std::memcpy(&x, &i, 8); return x; }

inline int __float2int_rn(float x) { return static_cast<int>(::nearbyintf(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline int __float2int_rd(float x) { return static_cast<int>(::floorf(x)); }
inline int __float2int_ru(float x) { return static_cast<int>(::ceilf(x)); }
inline unsigned int __float2uint_rn(float x) { return static_cast<unsigned int>(::nearbyintf(x)); }
inline unsigned int __float2uint_rz(float x) { return static_cast<unsigned int>(x); }
inline long long __float2ll_rn(float x) { return static_cast<long long>(::nearbyintf(x)); }
inline float __int2float_rn(int i) { return static_cast<float>(i); }
inline float __uint2float_rn(unsigned int i) { return static_cast<float>(i); }

inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned int __brev(unsigned int x) {
  unsigned int r = 0;
  for (int i = 0; i < 32; i++) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
inline unsigned int __byte_perm(unsigned int x, unsigned int y, unsigned int s) {
  const uint64_t v = (static_cast<uint64_t>(y) << 32) | x;
  unsigned int r = 0;
  for (int i = 0; i < 4; i++) r |= static_cast<unsigned int>((v >> (((s >> (4 * i)) & 7u) * 8)) & 0xffu) << (8 * i);
  return r;
}
inline unsigned int __funnelshift_l(unsigned int lo, unsigned int hi, unsigned int shift) {
  const uint64_t v = (static_cast<uint64_t>(hi) << 32) | lo;
  return static_cast<unsigned int>((v << (shift & 31u)) >> 32);
}
inline unsigned int __funnelshift_r(unsigned int lo, unsigned int hi, unsigned int shift) {
  const uint64_t v = (static_cast<uint64_t>(hi) << 32) | lo;
  return static_cast<unsigned int>(v >> (shift & 31u));
}
inline int __mulhi(int x, int y) { return static_cast<int>((static_cast<long long>(x) * y) >> 32); }
inline unsigned int __umulhi(unsigned int x, unsigned int y) {
  return static_cast<unsigned int>((static_cast<unsigned long long>(x) * y) >> 32);
}
inline int __mul24(int x, int y) { return ((x << 8) >> 8) * ((y << 8) >> 8); }
inline unsigned int __umul24(unsigned int x, unsigned int y) { return (x & 0xffffffu) * (y & 0xffffffu); }
// 4-way byte dot product with 32-bit accumulate (sm_61+): the int8 matvec workhorse.
inline int __dp4a(int a, int b, int c) {
  for (int i = 0; i < 4; i++) c += static_cast<int8_t>(a >> (8 * i)) * static_cast<int8_t>(b >> (8 * i));
  return c;
}
inline unsigned int __dp4a(unsigned int a, unsigned int b, unsigned int c) {
  for (int i = 0; i < 4; i++) c += ((a >> (8 * i)) & 0xffu) * ((b >> (8 * i)) & 0xffu);
  return c;
}
inline int __dp4a(char4 a, char4 b, int c) {
  return c + a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
}

// max/min as CUDA device code has them (plain overloads in the global namespace).
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline unsigned int max(int a, unsigned int b) { return max(static_cast<unsigned int>(a), b); }
inline unsigned int max(unsigned int a, int b) { return max(a, static_cast<unsigned int>(b)); }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float max(float a, float b) { return ::fmaxf(a, b); }
inline double max(double a, double b) { return ::fmax(a, b); }
inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int min(int a, unsigned int b) { return min(static_cast<unsigned int>(a), b); }
inline unsigned int min(unsigned int a, int b) { return min(a, static_cast<unsigned int>(b)); }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline float min(float a, float b) { return ::fminf(a, b); }
inline double min(double a, double b) { return ::fmin(a, b); }

// half/bf16 fused multiply-add: device-only in the CUDA headers. One rounding, as on the GPU
// (the double product of two 16-bit floats is exact).
inline __half __hfma(__half a, __half b, __half c) {
  return __double2half(static_cast<double>(__half2float(a)) * __half2float(b) + __half2float(c));
}
inline __half2 __hfma2(__half2 a, __half2 b, __half2 c) {
  return __halves2half2(__hfma(__low2half(a), __low2half(b), __low2half(c)),
                        __hfma(__high2half(a), __high2half(b), __high2half(c)));
}
inline __nv_bfloat16 __hfma(__nv_bfloat16 a, __nv_bfloat16 b, __nv_bfloat16 c) {
  return __double2bfloat16(static_cast<double>(__bfloat162float(a)) * __bfloat162float(b) + __bfloat162float(c));
}
inline __nv_bfloat162 __hfma2(__nv_bfloat162 a, __nv_bfloat162 b, __nv_bfloat162 c) {
  return __halves2bfloat162(__hfma(__low2bfloat16(a), __low2bfloat16(b), __low2bfloat16(c)),
                            __hfma(__high2bfloat16(a), __high2bfloat16(b), __high2bfloat16(c)));
}
