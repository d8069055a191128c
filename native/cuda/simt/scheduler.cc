// SIMT emulator scheduler: CUDA threads as fibers on one OS thread.
//
// Model. A launch runs its blocks one after another. All threads of a block exist at once, each a
// fiber with its own stack (a "worker": up to 1024, created on first use and reused by every later
// block and launch). A thread runs until it reaches a scheduling point (__syncthreads, a warp
// collective, __nanosleep) or exits; then the next runnable thread of the block runs (FIFO queue).
// A barrier or collective completes when its last member arrives: that thread computes the
// result for the whole group, marks the others runnable and carries on. When the queue is empty
// and some threads have not exited, nothing can ever complete: that is a deadlock, reported as a
// launch error listing what each thread was doing.
//
// Switching. A worker's stack is entered once through makecontext/setcontext (one syscall per
// worker for the life of the process); every later switch is _setjmp/_longjmp, which saves a few
// registers and makes no syscall (measured here: ~17 ns per switch vs ~250 ns for swapcontext).
// Each worker keeps two jump buffers: `top_jb`, the top of its loop, where a fresh thread starts,
// and `jb`, where a running thread is suspended. Abandoning a block after a fault just forgets
// `jb`: the next thread on that worker starts again from `top_jb`.
//
// Strictness (on purpose stricter than some hardware tolerates; see README.md):
// - __syncthreads must be reached by every thread of the block, at the same call site.
// - A warp collective completes when every lane named in its mask has arrived at the same
//   intrinsic with the same mask. Lanes that exited never arrive (deadlock); lanes that do not exist
//   (a partial last warp) may not be named, except by __syncwarp; a lane must name itself.
// - A shuffle that reads a lane outside the mask gets all-ones bits (NaN / -1) instead of a value.
// - mma and ldmatrix need a full warp.
#undef _FORTIFY_SOURCE  // _longjmp between fiber stacks must not go through __longjmp_chk

#include <pthread.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "simt.h"
#include "simt_internal.h"

// AddressSanitizer must be told about every stack switch (its fiber API), or it reports false
// errors on the first _longjmp to another stack.
#if defined(__SANITIZE_ADDRESS__)
#define LC_SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LC_SIMT_ASAN 1
#endif
#endif
#ifndef LC_SIMT_ASAN
#define LC_SIMT_ASAN 0
#endif
#if LC_SIMT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

// The builtin variables (declared in simt_device.h). Constant-initialized: no global constructor.
uint3 threadIdx;
uint3 blockIdx;
dim3 blockDim;
dim3 gridDim;

long long clock64() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace lc_simt {
namespace {

constexpr int kMaxThreads = 1024;
constexpr int kMaxWarps = kMaxThreads / 32;
constexpr uint64_t kPoison = ~0ull;  // what a read of a lane outside the mask returns
constexpr int kQueueEmpty = 1;        // sched_jb values
constexpr int kFault = 2;
constexpr uint64_t kMaxYieldsWithoutProgress = 1ull << 24;

enum class State : uint8_t { Idle, Runnable, Barrier, Warp, Done };

struct PendingCopy {
  void* dst;
  const void* src;
  int cp_size;
  int src_size;
  uint64_t group;
};

struct Fiber {
  jmp_buf jb;      // where the running thread is suspended
  jmp_buf top_jb;  // the worker's loop: a fresh thread starts here
  void* map = nullptr;
  size_t map_size = 0;
  void* stack_lo = nullptr;  // usable stack, above the guard page
  size_t stack_size = 0;
  void* asan_fake = nullptr;
  // the thread it runs in the current block
  int tid = 0;
  uint3 idx{0, 0, 0};
  State state = State::Idle;
  bool fresh = false;
  // what it waits at
  const char* file = nullptr;
  int line = 0;
  BarrierOp bar_op = BarrierOp::Sync;
  WarpKind kind = WarpKind::SyncWarp;
  unsigned mask = 0;
  const void* in = nullptr;
  void* out = nullptr;
  // cp.async copies not yet performed (performed at cp_async_wait or at exit)
  std::vector<PendingCopy> copies;
  uint64_t open_group = 0;  // copies issued now belong to this group; commit closes it
};

struct Sched {
  Fiber* fibers[kMaxThreads] = {};
  int n_fibers = 0;
  size_t stack_bytes = 0;
  // the launch in progress
  const LaunchConfig* cfg = nullptr;
  KernelEntry entry = nullptr;
  void* closure = nullptr;
  int n_threads = 0;
  int n_done = 0;
  Fiber* current = nullptr;
  jmp_buf sched_jb;
  int queue[kMaxThreads] = {};
  int q_head = 0;
  int q_count = 0;
  // block barrier
  int bar_arrived = 0;
  int bar_accum = 0;
  int bar_result = 0;
  bool bar_mismatch = false;
  const char* bar_file = nullptr;
  int bar_line = 0;
  BarrierOp bar_op = BarrierOp::Sync;
  unsigned warp_waiting[kMaxWarps] = {};  // lanes suspended in a collective
  uint64_t yields_without_progress = 0;
  // dynamic shared memory of the launch
  unsigned char* smem = nullptr;
  size_t smem_cap = 0;
  // the fault that ended the launch
  cudaError_t fault = cudaSuccess;
  std::string report;
  Stats stats;
  // the launching OS thread's stack (for AddressSanitizer's fiber annotations)
  const void* os_stack_lo = nullptr;
  size_t os_stack_size = 0;
  void* os_fake = nullptr;
};

Sched* g = nullptr;  // created by the first launch (under the device lock), never destroyed
Fiber* g_creating = nullptr;
jmp_buf g_create_jb;

// Stack switch annotations (no-ops without AddressSanitizer). leave() just before a _longjmp to
// another stack (fake_save: where this context's fake stack goes, nullptr when it is abandoned);
// arrive() right after landing.
inline void asan_leave(void** fake_save, const void* lo, size_t size) {
#if LC_SIMT_ASAN
  __sanitizer_start_switch_fiber(fake_save, lo, size);
#else
  (void)fake_save, (void)lo, (void)size;
#endif
}
inline void asan_arrive(void* fake) {
#if LC_SIMT_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  (void)fake;
#endif
}
inline void asan_leave_to_os(void** fake_save) { asan_leave(fake_save, g->os_stack_lo, g->os_stack_size); }

void find_os_stack() {
#if LC_SIMT_ASAN
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    g->os_stack_lo = addr;
    g->os_stack_size = size;
    pthread_attr_destroy(&attr);
  }
#endif
}

// ---- small helpers ----------------------------------------------------------------------------

const char* short_path(const char* file) {
  if (!file) return "?";
  const char* p = std::strstr(file, "native/");
  return p ? p : file;
}

bool same_site(const char* f1, int l1, const char* f2, int l2) {
  return l1 == l2 && (f1 == f2 || (f1 && f2 && std::strcmp(f1, f2) == 0));
}

const char* kind_name(WarpKind k) {
  switch (k) {
    case WarpKind::ShflIdx: return "__shfl_sync";
    case WarpKind::ShflUp: return "__shfl_up_sync";
    case WarpKind::ShflDown: return "__shfl_down_sync";
    case WarpKind::ShflBfly: return "__shfl_xor_sync";
    case WarpKind::Ballot: return "__ballot_sync";
    case WarpKind::Any: return "__any_sync";
    case WarpKind::All: return "__all_sync";
    case WarpKind::SyncWarp: return "__syncwarp";
    case WarpKind::ReduceAdd: return "__reduce_add_sync";
    case WarpKind::ReduceMinU: return "__reduce_min_sync(unsigned)";
    case WarpKind::ReduceMinS: return "__reduce_min_sync(int)";
    case WarpKind::ReduceMaxU: return "__reduce_max_sync(unsigned)";
    case WarpKind::ReduceMaxS: return "__reduce_max_sync(int)";
    case WarpKind::ReduceAnd: return "__reduce_and_sync";
    case WarpKind::ReduceOr: return "__reduce_or_sync";
    case WarpKind::ReduceXor: return "__reduce_xor_sync";
    case WarpKind::MmaBf16: return "mma_m16n8k16_bf16";
    case WarpKind::MmaF16: return "mma_m16n8k16_f16";
    case WarpKind::Ldmatrix1: return "ldmatrix_x1";
    case WarpKind::Ldmatrix2: return "ldmatrix_x2";
    case WarpKind::Ldmatrix4: return "ldmatrix_x4";
    case WarpKind::Ldmatrix1T: return "ldmatrix_x1_trans";
    case WarpKind::Ldmatrix2T: return "ldmatrix_x2_trans";
    case WarpKind::Ldmatrix4T: return "ldmatrix_x4_trans";
  }
  return "warp collective";
}

const char* barrier_name(BarrierOp op) {
  switch (op) {
    case BarrierOp::Sync: return "__syncthreads";
    case BarrierOp::Count: return "__syncthreads_count";
    case BarrierOp::And: return "__syncthreads_and";
    case BarrierOp::Or: return "__syncthreads_or";
  }
  return "__syncthreads";
}

bool is_warp_wide(WarpKind k) {  // .aligned PTX instructions: the whole warp, which must be full
  return k >= WarpKind::MmaBf16;
}

std::string lanes_text(unsigned mask) {  // "0-3,7,9-31"
  std::string s;
  for (int l = 0; l < 32;) {
    if (!((mask >> l) & 1u)) {
      l++;
      continue;
    }
    int e = l;
    while (e + 1 < 32 && ((mask >> (e + 1)) & 1u)) e++;
    if (!s.empty()) s += ",";
    s += std::to_string(l);
    if (e > l) s += "-" + std::to_string(e);
    l = e + 1;
  }
  return s;
}

std::string dims_text(dim3 d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}
std::string dims_text(uint3 d) { return dims_text(dim3(d.x, d.y, d.z)); }

std::string site_text(const char* file, int line) {
  return std::string(short_path(file)) + ":" + std::to_string(line);
}

unsigned lanes_in_warp(int warp) {  // lanes of `warp` that exist in this block
  const int n = g->n_threads - warp * 32;
  return n >= 32 ? 0xffffffffu : ((1u << n) - 1u);
}

std::string launch_text() {
  return "kernel " + std::string(g->cfg->name) + ", block " + dims_text(blockIdx) + " of grid " +
         dims_text(gridDim) + ", block size " + dims_text(blockDim);
}

// ---- run queue and switching ------------------------------------------------------------------

void push(Fiber* f) {
  g->queue[(g->q_head + g->q_count) % kMaxThreads] = f->tid;
  g->q_count++;
}

Fiber* pop() {
  if (g->q_count == 0) return nullptr;
  Fiber* f = g->fibers[g->queue[g->q_head]];
  g->q_head = (g->q_head + 1) % kMaxThreads;
  g->q_count--;
  return f;
}

// from_fake: the AddressSanitizer slot of the context being left (nullptr: abandoned).
[[noreturn]] void resume(Fiber* f, void** from_fake) {
  g->current = f;
  threadIdx = f->idx;
  g->stats.switches++;
  if (f->fresh) {
    f->fresh = false;
#if LC_SIMT_ASAN
    __asan_unpoison_memory_region(f->stack_lo, f->stack_size);  // frames abandoned by an earlier thread
#endif
    asan_leave(from_fake, f->stack_lo, f->stack_size);
    _longjmp(f->top_jb, 1);
  }
  asan_leave(from_fake, f->stack_lo, f->stack_size);
  _longjmp(f->jb, 1);
}

[[noreturn]] void run_next(void** from_fake) {
  Fiber* next = pop();
  if (!next) {
    asan_leave_to_os(from_fake);
    _longjmp(g->sched_jb, kQueueEmpty);
  }
  resume(next, from_fake);
}

// Suspends the running thread (already marked as waiting, or queued again) and runs the next
// one; returns when this thread is resumed.
void suspend(Fiber* self) {
  if (_setjmp(self->jb) == 0) run_next(&self->asan_fake);
  asan_arrive(self->asan_fake);
}

[[noreturn]] void outside_kernel(const char* what) {
  std::fprintf(stderr, "SIMT emulator: %s called outside a kernel launch\n", what);
  std::abort();
}

inline Fiber* current_fiber(const char* what) {
  if (__builtin_expect(!g || !g->current, 0)) outside_kernel(what);
  return g->current;
}

// Ends the launch with `code`; `what` says why. Builds the report, then leaves the fiber for
// good (no destructors run on this stack: nothing here owns memory when the jump happens).
void set_fault(cudaError_t code, const char* what, const char* file, int line) {
  Fiber* self = g->current;
  g->fault = code;
  g->report = "SIMT emulator: " + launch_text() + ": thread " + dims_text(self->idx) + " (warp " +
              std::to_string(self->tid / 32) + ", lane " + std::to_string(self->tid % 32) + "): " + what;
  if (file) g->report += " at " + site_text(file, line);
}

[[noreturn]] void fail(cudaError_t code, const char* what, const char* file, int line) {
  set_fault(code, what, file, line);
  asan_leave_to_os(nullptr);
  _longjmp(g->sched_jb, kFault);
}

void perform(const PendingCopy& c) {
  std::memcpy(c.dst, c.src, static_cast<size_t>(c.src_size));
  if (c.src_size < c.cp_size) std::memset(static_cast<char*>(c.dst) + c.src_size, 0, static_cast<size_t>(c.cp_size - c.src_size));
}

// Performs the copies of groups before `limit` (all of them when limit is ~0).
void complete_copies(Fiber* f, uint64_t limit) {
  size_t kept = 0;
  for (size_t i = 0; i < f->copies.size(); i++) {
    if (f->copies[i].group < limit) {
      perform(f->copies[i]);
    } else {
      f->copies[kept++] = f->copies[i];
    }
  }
  f->copies.resize(kept);
}

// ---- workers ------------------------------------------------------------------------------------

[[noreturn]] void thread_main() {
  Fiber* self = g->current;
  bool threw = false;
  try {
    g->entry(g->closure);
  } catch (...) {
    threw = true;  // leave the handler before jumping away
  }
  if (threw) fail(cudaErrorLaunchFailure, "a C++ exception escaped the kernel", nullptr, 0);
  complete_copies(self, ~0ull);
  self->state = State::Done;
  g->n_done++;
  g->yields_without_progress = 0;
  run_next(nullptr);  // this thread's frames are abandoned; the worker restarts from top_jb
}

void worker_entry() {
  asan_arrive(nullptr);
  Fiber* w = g_creating;
  if (_setjmp(w->top_jb) == 0) {  // created: back to create_fiber
    asan_leave_to_os(nullptr);
    _longjmp(g_create_jb, 1);
  }
  asan_arrive(nullptr);  // started with a thread to run
  thread_main();
}

bool create_fiber() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t stack = (g->stack_bytes + page - 1) / page * page;
  Fiber* f = new Fiber;
  f->map_size = stack + page;
  f->map = mmap(nullptr, f->map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                -1, 0);
  if (f->map == MAP_FAILED) {
    delete f;
    return false;
  }
  mprotect(f->map, page, PROT_NONE);  // guard page: a stack overflow faults instead of corrupting
  f->stack_lo = static_cast<char*>(f->map) + page;
  f->stack_size = stack;
  ucontext_t uc;
  getcontext(&uc);
  uc.uc_stack.ss_sp = f->stack_lo;
  uc.uc_stack.ss_size = stack;
  uc.uc_link = nullptr;
  makecontext(&uc, worker_entry, 0);
  g_creating = f;
  if (_setjmp(g_create_jb) == 0) {
    asan_leave(&g->os_fake, f->stack_lo, f->stack_size);
    setcontext(&uc);
  }
  asan_arrive(g->os_fake);
  g->fibers[g->n_fibers++] = g_creating;
  return true;
}

void init_scheduler() {
  if (g) return;
  g = new Sched;
  size_t kb = 256;
  if (const char* env = std::getenv("LLAMA_CUDA_SIMT_STACK_KB")) {
    const long v = std::strtol(env, nullptr, 10);
    if (v >= 16) kb = static_cast<size_t>(v);
  }
  g->stack_bytes = kb * 1024;
}

// ---- the deadlock report -------------------------------------------------------------------------

std::string thread_state_text(const Fiber* f) {
  switch (f->state) {
    case State::Done: return "exited";
    case State::Barrier: return "waiting at " + std::string(barrier_name(f->bar_op)) + " (" + site_text(f->file, f->line) + ")";
    case State::Warp: {
      char mask[16];
      std::snprintf(mask, sizeof mask, "0x%08x", f->mask);
      return "waiting at " + std::string(kind_name(f->kind)) + " mask " + mask + " (" + site_text(f->file, f->line) + ")";
    }
    case State::Runnable: return "runnable";
    case State::Idle: return "not started";
  }
  return "?";
}

// "0-15", "0,2,4,...,62 (32 threads)": a set of thread ids as ranges, shortened.
std::string threads_text(const std::vector<int>& tids) {
  std::string s;
  int runs = 0;
  for (size_t i = 0; i < tids.size();) {
    size_t e = i;
    while (e + 1 < tids.size() && tids[e + 1] == tids[e] + 1) e++;
    if (runs++ == 6) {
      s += ",...";
      break;
    }
    if (!s.empty()) s += ",";
    s += std::to_string(tids[i]);
    if (e > i) s += "-" + std::to_string(tids[e]);
    i = e + 1;
  }
  return (tids.size() == 1 ? "thread " : "threads ") + s +
         (runs > 6 ? " (" + std::to_string(tids.size()) + " threads)" : "");
}

std::string deadlock_report() {
  std::string r = "SIMT emulator: deadlock in " + launch_text() + ": no thread can continue.";
  // what the threads do, grouped by state, in order of their first thread
  std::vector<std::pair<std::string, std::vector<int>>> groups;
  for (int t = 0; t < g->n_threads; t++) {
    const std::string s = thread_state_text(g->fibers[t]);
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& x) { return x.first == s; });
    if (it == groups.end()) {
      groups.push_back({s, {t}});
    } else {
      it->second.push_back(t);
    }
  }
  for (size_t i = 0; i < groups.size() && i < 12; i++) r += "\n  " + threads_text(groups[i].second) + ": " + groups[i].first;
  if (groups.size() > 12) r += "\n  ... (" + std::to_string(groups.size() - 12) + " more kinds of state)";
  // why the collectives cannot complete
  int notes = 0;
  for (int w = 0; w * 32 < g->n_threads && notes < 8; w++) {
    unsigned seen = 0;
    for (int l = 0; l < 32; l++) {
      const int t = w * 32 + l;
      if (t >= g->n_threads || (seen >> l) & 1u) continue;
      const Fiber* f = g->fibers[t];
      if (f->state != State::Warp) continue;
      unsigned arrived = 0;
      for (int k = 0; k < 32 && w * 32 + k < g->n_threads; k++) {
        const Fiber* o = g->fibers[w * 32 + k];
        if (o->state == State::Warp && o->kind == f->kind && o->mask == f->mask) arrived |= 1u << k;
      }
      seen |= arrived;
      const unsigned missing = f->mask & ~arrived;
      r += "\n  warp " + std::to_string(w) + ": " + kind_name(f->kind) + " has lanes " + lanes_text(arrived) +
           ", still waiting for lanes " + lanes_text(missing);
      std::string why;
      for (int k = 0; k < 32; k++) {
        if (!((missing >> k) & 1u)) continue;
        const std::string s = thread_state_text(g->fibers[w * 32 + k]);
        if (why.find(s) == std::string::npos) why += (why.empty() ? "" : "; ") + s;
      }
      if (!why.empty()) r += " (" + why + ")";
      notes++;
    }
  }
  if (g->bar_arrived > 0) {
    r += "\n  " + std::to_string(g->bar_arrived) + " of " + std::to_string(g->n_threads) + " threads reached " +
         barrier_name(g->bar_op) + " (" + site_text(g->bar_file, g->bar_line) + ")";
    if (g->bar_mismatch) r += "; threads wait at different barriers, which never match";
  }
  return r;
}

// ---- warp collectives: the computations ---------------------------------------------------------

float bf16_bits_to_float(uint32_t h) {
  const uint32_t u = (h & 0xffffu) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float f16_bits_to_float(uint32_t h) {
  __half_raw raw;
  raw.x = static_cast<unsigned short>(h & 0xffffu);
  return __half2float(__half(raw));
}

void compute_shfl(WarpKind kind, Fiber** lanes, unsigned mask) {
  uint64_t result[32];
  for (unsigned m = mask; m; m &= m - 1) {
    const int l = __builtin_ctz(m);
    const ShflIn& in = *static_cast<const ShflIn*>(lanes[l]->in);
    // PTX ISA, shfl.sync: c = ((32 - width) << 8) | clamp, clamp = 0 for .up and 31 otherwise.
    const int segmask = (32 - in.width) & 31;
    const int clamp = kind == WarpKind::ShflUp ? 0 : 31;
    const int bval = in.b & 31;
    const int max_lane = (l & segmask) | (clamp & ~segmask);
    const int min_lane = l & segmask;
    int j = l;
    bool in_range = false;
    switch (kind) {
      case WarpKind::ShflUp: j = l - bval; in_range = j >= max_lane; break;
      case WarpKind::ShflDown: j = l + bval; in_range = j <= max_lane; break;
      case WarpKind::ShflBfly: j = l ^ bval; in_range = j <= max_lane; break;
      default: j = min_lane | (bval & ~segmask); in_range = j <= max_lane; break;
    }
    if (!in_range) j = l;
    result[l] = ((mask >> j) & 1u) ? static_cast<const ShflIn*>(lanes[j]->in)->bits : kPoison;
  }
  for (unsigned m = mask; m; m &= m - 1) {
    const int l = __builtin_ctz(m);
    *static_cast<uint64_t*>(lanes[l]->out) = result[l];
  }
}

// mma.m16n8k16.row.col, f32 accumulate. Fragment layouts from the PTX ISA ("Matrix Fragments for
// mma.m16n8k16 with floating point type"), groupID = lane >> 2, tig = lane % 4:
//   A (16x16, 4 regs of 2): a_i at row groupID (+8 for i in {2,3,6,7}), col tig*2 + (i&1) (+8 for i >= 4)
//   B (16x8, 2 regs of 2):  b_i at row (k) tig*2 + (i&1) (+8 for i >= 2), col (n) groupID
//   C/D (16x8, 4 floats):   c_i at row groupID (+8 for i >= 2), col tig*2 + (i&1)
// Element 2r is the low half of register r.
void compute_mma(WarpKind kind, Fiber** lanes) {
  float a[16][16], b[16][8], c[16][8];
  auto cvt = kind == WarpKind::MmaBf16 ? bf16_bits_to_float : f16_bits_to_float;
  for (int l = 0; l < 32; l++) {
    const MmaIn& in = *static_cast<const MmaIn*>(lanes[l]->in);
    const int gid = l >> 2, tig = l & 3;
    for (int i = 0; i < 8; i++) {
      const int row = gid + ((i & 2) ? 8 : 0);
      const int col = tig * 2 + (i & 1) + (i >= 4 ? 8 : 0);
      a[row][col] = cvt(in.a[i / 2] >> (16 * (i & 1)));
    }
    for (int i = 0; i < 4; i++) {
      const int k = tig * 2 + (i & 1) + (i >= 2 ? 8 : 0);
      b[k][gid] = cvt(in.b[i / 2] >> (16 * (i & 1)));
    }
    for (int i = 0; i < 4; i++) c[gid + (i >= 2 ? 8 : 0)][tig * 2 + (i & 1)] = in.c[i];
  }
  for (int l = 0; l < 32; l++) {
    const int gid = l >> 2, tig = l & 3;
    float* d = static_cast<float*>(lanes[l]->out);
    for (int i = 0; i < 4; i++) {
      const int row = gid + (i >= 2 ? 8 : 0), col = tig * 2 + (i & 1);
      double acc = 0.0;  // products of 16-bit floats are exact; one rounding at the end
      for (int k = 0; k < 16; k++) acc += static_cast<double>(a[row][k]) * b[k][col];
      d[i] = static_cast<float>(acc + c[row][col]);
    }
  }
}

// ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{.trans}.shared.b16: lanes 8m..8m+7 give the row addresses
// of matrix m (16 bytes each). Lane l receives in register m the elements (row l/4, cols 2(l%4),
// 2(l%4)+1) of matrix m, or with .trans (rows 2(l%4), 2(l%4)+1, col l/4): the transpose.
void compute_ldmatrix(WarpKind kind, Fiber** lanes) {
  const int num = (kind == WarpKind::Ldmatrix1 || kind == WarpKind::Ldmatrix1T) ? 1
                  : (kind == WarpKind::Ldmatrix2 || kind == WarpKind::Ldmatrix2T) ? 2 : 4;
  const bool trans = kind >= WarpKind::Ldmatrix1T;
  uint32_t r[32][4];
  for (int m = 0; m < num; m++) {
    const unsigned char* rows[8];
    for (int i = 0; i < 8; i++) rows[i] = *static_cast<const unsigned char* const*>(lanes[m * 8 + i]->in);
    for (int l = 0; l < 32; l++) {
      const int gid = l >> 2, tig = l & 3;
      uint16_t lo, hi;
      if (!trans) {
        std::memcpy(&lo, rows[gid] + 2 * (2 * tig), 2);
        std::memcpy(&hi, rows[gid] + 2 * (2 * tig + 1), 2);
      } else {
        std::memcpy(&lo, rows[2 * tig] + 2 * gid, 2);
        std::memcpy(&hi, rows[2 * tig + 1] + 2 * gid, 2);
      }
      r[l][m] = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
    }
  }
  for (int l = 0; l < 32; l++) std::memcpy(lanes[l]->out, r[l], sizeof(uint32_t) * static_cast<size_t>(num));
}

void compute(WarpKind kind, int warp, unsigned mask) {
  Fiber** lanes = &g->fibers[warp * 32];
  switch (kind) {
    case WarpKind::ShflIdx:
    case WarpKind::ShflUp:
    case WarpKind::ShflDown:
    case WarpKind::ShflBfly:
      compute_shfl(kind, lanes, mask);
      return;
    case WarpKind::Ballot:
    case WarpKind::Any:
    case WarpKind::All:
    case WarpKind::SyncWarp: {
      unsigned ballot = 0;
      for (unsigned m = mask; m; m &= m - 1) {
        const int l = __builtin_ctz(m);
        if (*static_cast<const int*>(lanes[l]->in)) ballot |= 1u << l;
      }
      const unsigned r = kind == WarpKind::Ballot ? ballot : kind == WarpKind::Any ? (ballot != 0) : kind == WarpKind::All ? (ballot == mask) : 0u;
      for (unsigned m = mask; m; m &= m - 1) *static_cast<unsigned*>(lanes[__builtin_ctz(m)]->out) = r;
      return;
    }
    case WarpKind::ReduceAdd:
    case WarpKind::ReduceMinU:
    case WarpKind::ReduceMinS:
    case WarpKind::ReduceMaxU:
    case WarpKind::ReduceMaxS:
    case WarpKind::ReduceAnd:
    case WarpKind::ReduceOr:
    case WarpKind::ReduceXor: {
      bool first = true;
      unsigned acc = 0;
      for (unsigned m = mask; m; m &= m - 1) {
        const unsigned v = *static_cast<const unsigned*>(lanes[__builtin_ctz(m)]->in);
        if (first) {
          acc = v;
          first = false;
          continue;
        }
        switch (kind) {
          case WarpKind::ReduceAdd: acc += v; break;
          case WarpKind::ReduceMinU: acc = v < acc ? v : acc; break;
          case WarpKind::ReduceMaxU: acc = v > acc ? v : acc; break;
          case WarpKind::ReduceMinS: acc = static_cast<int>(v) < static_cast<int>(acc) ? v : acc; break;
          case WarpKind::ReduceMaxS: acc = static_cast<int>(v) > static_cast<int>(acc) ? v : acc; break;
          case WarpKind::ReduceAnd: acc &= v; break;
          case WarpKind::ReduceOr: acc |= v; break;
          default: acc ^= v; break;
        }
      }
      for (unsigned m = mask; m; m &= m - 1) *static_cast<unsigned*>(lanes[__builtin_ctz(m)]->out) = acc;
      return;
    }
    case WarpKind::MmaBf16:
    case WarpKind::MmaF16:
      compute_mma(kind, lanes);
      return;
    default:
      compute_ldmatrix(kind, lanes);
      return;
  }
}

// ---- blocks -------------------------------------------------------------------------------------

bool run_block() {
  const int n = g->n_threads;
  g->n_done = 0;
  g->q_head = 0;
  g->q_count = 0;
  g->bar_arrived = 0;
  g->bar_mismatch = false;
  g->yields_without_progress = 0;
  for (int w = 0; w < kMaxWarps; w++) g->warp_waiting[w] = 0;
  // Shared memory is uninitialized on a GPU: all-ones bits make reads before writes show as NaN/-1.
  if (g->cfg->smem) std::memset(g->smem, 0xff, g->cfg->smem);
  const unsigned bx = blockDim.x, by = blockDim.y;
  for (int t = 0; t < n; t++) {
    Fiber* f = g->fibers[t];
    f->tid = t;
    f->idx = uint3{t % bx, (t / bx) % by, t / (bx * by)};
    f->state = State::Runnable;
    f->fresh = true;
    f->copies.clear();
    f->open_group = 0;
    push(f);
  }
  g->stats.blocks++;
  g->stats.threads += static_cast<uint64_t>(n);
  const int r = _setjmp(g->sched_jb);
  if (r == 0) run_next(&g->os_fake);
  asan_arrive(g->os_fake);
  if (r == kFault) return false;
  if (g->n_done == g->n_threads) return true;
  g->fault = cudaErrorLaunchFailure;
  g->report = deadlock_report();
  return false;
}

}  // namespace

// ---- services called from kernels (simt_device.h, ptx.cuh) --------------------------------------

int block_barrier(BarrierOp op, int pred, const char* file, int line) {
  if (__builtin_expect(!g || !g->current, 0)) outside_kernel(barrier_name(op));
  Fiber* self = g->current;
  if (g->bar_arrived == 0) {
    g->bar_file = file;
    g->bar_line = line;
    g->bar_op = op;
    g->bar_accum = 0;
    g->bar_mismatch = false;
  } else if (op != g->bar_op || !same_site(file, line, g->bar_file, g->bar_line)) {
    g->bar_mismatch = true;
  }
  g->bar_accum += pred != 0;
  g->bar_arrived++;
  self->state = State::Barrier;
  self->bar_op = op;
  self->file = file;
  self->line = line;
  if (g->bar_arrived == g->n_threads && !g->bar_mismatch) {
    switch (op) {
      case BarrierOp::Sync: g->bar_result = 1; break;
      case BarrierOp::Count: g->bar_result = g->bar_accum; break;
      case BarrierOp::And: g->bar_result = g->bar_accum == g->n_threads; break;
      case BarrierOp::Or: g->bar_result = g->bar_accum != 0; break;
    }
    g->bar_arrived = 0;
    g->stats.barriers++;
    g->yields_without_progress = 0;
    for (int t = 0; t < g->n_threads; t++) {
      Fiber* f = g->fibers[t];
      if (f == self) continue;
      f->state = State::Runnable;
      push(f);
    }
    self->state = State::Runnable;
    return g->bar_result;
  }
  suspend(self);
  return g->bar_result;  // read before anyone can reach the next barrier
}

void warp_collective(WarpKind kind, unsigned mask, const void* in, void* out, const char* file, int line) {
  if (__builtin_expect(!g || !g->current, 0)) outside_kernel(kind_name(kind));
  Fiber* self = g->current;
  const int warp = self->tid >> 5, lane = self->tid & 31;
  const unsigned exists = lanes_in_warp(warp);
  char what[256];
  if (is_warp_wide(kind)) {
    if (exists != 0xffffffffu) {
      std::snprintf(what, sizeof what, "%s needs all 32 lanes of the warp, but warp %d has lanes %s (block of %d threads)",
                    kind_name(kind), warp, lanes_text(exists).c_str(), g->n_threads);
      fail(cudaErrorLaunchFailure, what, file, line);
    }
    mask = 0xffffffffu;
  }
  if (!((mask >> lane) & 1u)) {
    std::snprintf(what, sizeof what, "%s with mask 0x%08x, which does not include the calling lane %d", kind_name(kind), mask, lane);
    fail(cudaErrorLaunchFailure, what, file, line);
  }
  if (kind == WarpKind::SyncWarp) {
    mask &= exists;  // lanes past the end of a partial warp count as exited for __syncwarp
  } else if (mask & ~exists) {
    std::snprintf(what, sizeof what, "%s with mask 0x%08x names lanes %s that do not exist (warp %d of a %d-thread block)",
                  kind_name(kind), mask, lanes_text(mask & ~exists).c_str(), warp, g->n_threads);
    fail(cudaErrorLaunchFailure, what, file, line);
  }
  if (kind <= WarpKind::ShflBfly) {
    const int width = static_cast<const ShflIn*>(in)->width;
    if (width < 1 || width > 32 || (width & (width - 1))) {
      std::snprintf(what, sizeof what, "%s with width %d (must be a power of two from 1 to 32)", kind_name(kind), width);
      fail(cudaErrorLaunchFailure, what, file, line);
    }
  }
  if (kind >= WarpKind::Ldmatrix1) {
    const int num = (kind == WarpKind::Ldmatrix1 || kind == WarpKind::Ldmatrix1T) ? 1
                    : (kind == WarpKind::Ldmatrix2 || kind == WarpKind::Ldmatrix2T) ? 2 : 4;
    const void* row = *static_cast<const void* const*>(in);
    if (lane < 8 * num && (reinterpret_cast<uintptr_t>(row) & 15u)) {
      std::snprintf(what, sizeof what, "%s row address %p is not 16-byte aligned", kind_name(kind), row);
      fail(cudaErrorMisalignedAddress, what, file, line);
    }
  }
  self->state = State::Warp;
  self->kind = kind;
  self->mask = mask;
  self->in = in;
  self->out = out;
  self->file = file;
  self->line = line;
  g->warp_waiting[warp] |= 1u << lane;
  if ((g->warp_waiting[warp] & mask) == mask) {
    bool match = true;
    for (unsigned m = mask; m && match; m &= m - 1) {
      const Fiber* f = g->fibers[warp * 32 + __builtin_ctz(m)];
      match = f->kind == kind && f->mask == mask;
    }
    if (match) {
      compute(kind, warp, mask);
      g->warp_waiting[warp] &= ~mask;
      g->stats.warp_ops++;
      g->yields_without_progress = 0;
      for (unsigned m = mask; m; m &= m - 1) {
        Fiber* f = g->fibers[warp * 32 + __builtin_ctz(m)];
        f->state = State::Runnable;
        if (f != self) push(f);
      }
      return;
    }
  }
  suspend(self);
}

unsigned active_mask() {
  Fiber* self = current_fiber("__activemask");
  const int warp = self->tid >> 5;
  unsigned m = lanes_in_warp(warp);
  for (int l = 0; l < 32; l++) {
    if (((m >> l) & 1u) && g->fibers[warp * 32 + l]->state == State::Done) m &= ~(1u << l);
  }
  return m;
}

void yield() {
  Fiber* self = current_fiber("__nanosleep");
  if (++g->yields_without_progress > kMaxYieldsWithoutProgress) {
    fail(cudaErrorLaunchFailure,
         "spin-wait with __nanosleep made no progress for 16M sleeps (blocks run one after another here: "
         "waiting on another block never ends)",
         nullptr, 0);
  }
  push(self);
  suspend(self);
}

void* dynamic_smem() {
  current_fiber("LC_DYNAMIC_SMEM");
  return g->smem;
}

void trap(const char* what, const char* file, int line) {
  current_fiber(what);
  fail(cudaErrorLaunchFailure, what, file, line);
}

void check_aligned(const void* p, size_t align, const char* what, const char* file, int line) {
  if ((reinterpret_cast<uintptr_t>(p) & (align - 1)) == 0) return;
  current_fiber(what);
  char text[200];
  std::snprintf(text, sizeof text, "%s: address %p is not %zu-byte aligned", what, p, align);
  fail(cudaErrorMisalignedAddress, text, file, line);
}

void cp_async(void* dst, const void* src, int cp_size, int src_size, const char* file, int line) {
  Fiber* self = current_fiber("cp.async");
  char what[200];
  if (src_size < 0 || src_size > cp_size) {
    std::snprintf(what, sizeof what, "cp.async of %d bytes with src-size %d", cp_size, src_size);
    fail(cudaErrorLaunchFailure, what, file, line);
  }
  check_aligned(dst, static_cast<size_t>(cp_size), "cp.async destination", file, line);
  check_aligned(src, static_cast<size_t>(cp_size), "cp.async source", file, line);
  self->copies.push_back(PendingCopy{dst, src, cp_size, src_size, self->open_group});
}

void cp_async_commit(const char*, int) { current_fiber("cp.async.commit_group")->open_group++; }

void cp_async_wait(int n, const char*, int) {
  Fiber* self = current_fiber("cp.async.wait_group");
  // committed groups are 0 .. open_group-1; the n most recent may stay in flight
  const uint64_t limit = self->open_group > static_cast<uint64_t>(n) ? self->open_group - static_cast<uint64_t>(n) : 0;
  complete_copies(self, limit);
}

namespace detail {

Stats& stats() {
  init_scheduler();
  return g->stats;
}

cudaError_t run_kernel(const LaunchConfig& cfg, KernelEntry entry, void* closure, std::string* report) {
  init_scheduler();
  if (g->current) {
    *report = "SIMT emulator: a kernel launched another kernel (dynamic parallelism is not emulated)";
    return cudaErrorNotSupported;
  }
  find_os_stack();
  const int n = static_cast<int>(cfg.block.x * cfg.block.y * cfg.block.z);
  while (g->n_fibers < n) {
    if (!create_fiber()) {
      *report = "SIMT emulator: could not map a stack for thread " + std::to_string(g->n_fibers);
      return cudaErrorLaunchOutOfResources;
    }
  }
  if (cfg.smem > g->smem_cap) {
    std::free(g->smem);
    g->smem_cap = (cfg.smem + 4095) / 4096 * 4096;
    g->smem = static_cast<unsigned char*>(std::aligned_alloc(128, g->smem_cap));
  }
  g->cfg = &cfg;
  g->entry = entry;
  g->closure = closure;
  g->n_threads = n;
  g->fault = cudaSuccess;
  g->stats.launches++;
  gridDim = cfg.grid;
  blockDim = cfg.block;
  bool ok = true;
  for (unsigned z = 0; z < cfg.grid.z && ok; z++) {
    for (unsigned y = 0; y < cfg.grid.y && ok; y++) {
      for (unsigned x = 0; x < cfg.grid.x && ok; x++) {
        blockIdx = uint3{x, y, z};
        ok = run_block();
      }
    }
  }
  g->current = nullptr;
  g->cfg = nullptr;
  if (ok) return cudaSuccess;
  *report = g->report;
  return g->fault;
}

}  // namespace detail
}  // namespace lc_simt
