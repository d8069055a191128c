#include "thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define LC_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define LC_CPU_RELAX() asm volatile("yield")
#else
#define LC_CPU_RELAX() ((void)0)
#endif

namespace lc {

namespace {
// Spin iterations before a worker sleeps; about 50-100 us on current CPUs, longer than
// the gap between the ops of one step, shorter than the gap between steps.
constexpr int kSpinBeforeSleep = 1 << 14;
}  // namespace

int ThreadPool::default_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return int(std::clamp(hw == 0 ? 1u : hw, 1u, 64u));
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  workers_.reserve(size_t(n_threads_ - 1));
  for (int i = 1; i < n_threads_; i++) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_impl(Call call, void* ctx) {
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    call_ = call;
    ctx_ = ctx;
    pending_.store(n_threads_ - 1);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  call(ctx, 0, n_threads_);
  while (pending_.load(std::memory_order_acquire) != 0) LC_CPU_RELAX();
}

void ThreadPool::worker_main(int ith) {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinBeforeSleep) {
      LC_CPU_RELAX();
      spins++;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    Call call;
    void* ctx;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      call = call_;
      ctx = ctx_;
    }
    call(ctx, ith, n_threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace lc
