// ThreadPool: a fixed set of worker threads that run one parallel job at a time.
// run(fn) calls fn(ith, nth) on every thread (the caller is thread 0) and returns when all
// calls have returned; kernels split their own work with split_range(). Workers spin
// briefly between jobs (a decode step runs hundreds of short jobs) and then sleep.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace lc {

struct Range {
  int64_t begin;
  int64_t end;
};

// The ith of nth near-equal contiguous parts of [0, n).
inline Range split_range(int64_t n, int ith, int nth) {
  const int64_t base = n / nth, extra = n % nth;
  const int64_t begin = ith * base + (ith < extra ? ith : extra);
  return {begin, begin + base + (ith < extra ? 1 : 0)};
}

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  template <class F>
  void run(F&& fn) {
    if (n_threads_ == 1) {
      fn(0, 1);
      return;
    }
    auto call = [](void* ctx, int ith, int nth) { (*static_cast<F*>(ctx))(ith, nth); };
    run_impl(call, &fn);
  }

  // Threads to use when the caller passes 0: the online CPUs, capped for sanity.
  static int default_threads();

 private:
  using Call = void (*)(void*, int, int);
  void run_impl(Call call, void* ctx);
  void worker_main(int ith);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one job at a time

  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  Call call_ = nullptr;
  void* ctx_ = nullptr;
};

}  // namespace lc
