#include "membench.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "aligned_buffer.h"
#include "thread_pool.h"

namespace lc {

namespace {

// Sum of words in [begin, end): four independent accumulators so loads are the limit.
uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
  }
  for (; i < n; i++) a += p[i];
  return a + b + c + d;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

bool measure_memory_bandwidth(size_t bytes, int threads, int repeats, MemoryBandwidth* out) {
  AlignedBuffer src, dst;
  if (!src.allocate(bytes, "bandwidth source").ok() || !dst.allocate(bytes, "bandwidth destination").ok()) return false;
  std::memset(src.data(), 1, bytes);  // touch every page before timing
  std::memset(dst.data(), 0, bytes);
  ThreadPool pool(std::max(1, threads));
  const size_t words = bytes / 8;
  const uint64_t* s = reinterpret_cast<const uint64_t*>(src.data());
  std::vector<uint64_t> sink(size_t(pool.size()), 0);
  double best_read = 1e30, best_copy = 1e30;
  for (int r = 0; r < std::max(1, repeats); r++) {
    auto t0 = std::chrono::steady_clock::now();
    pool.run([&](int ith, int nth) {
      const Range range = split_range(int64_t(words), ith, nth);
      sink[size_t(ith)] += sum_words(s + range.begin, size_t(range.end - range.begin));
    });
    best_read = std::min(best_read, seconds_since(t0));
    t0 = std::chrono::steady_clock::now();
    pool.run([&](int ith, int nth) {
      const Range range = split_range(int64_t(bytes / 64), ith, nth);
      std::memcpy(dst.data() + range.begin * 64, src.data() + range.begin * 64, size_t(range.end - range.begin) * 64);
    });
    best_copy = std::min(best_copy, seconds_since(t0));
  }
  uint64_t total = 0;
  for (uint64_t v : sink) total += v;
  out->read_gbps = double(bytes) / best_read / 1e9 + (total == 42 ? 1e-12 : 0.0);  // keep the sums alive
  out->copy_gbps = 2.0 * double(bytes) / best_copy / 1e9;
  out->bytes = bytes;
  out->threads = pool.size();
  return true;
}

}  // namespace lc
