// Shared by the native/tests/cuda_check_*.cu programs: each runs CUDA kernels (on a GPU under
// nvcc, on the CPU under the SIMT emulator) against the CPU reference ops (native/cpu/ops/) on
// random data of awkward sizes, and prints evidence on failure (style.md: the case, the first
// pairs, the worst index, the tolerance; at most 10 faults listed). Exit status: the failures.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cuda/common.cuh"

namespace lc::check {

struct Tolerance {
  double atol;
  double rtol;
};

inline int& failures() {
  static int n = 0;
  return n;
}
inline int& cases() {
  static int n = 0;
  return n;
}

// Compares got with ref elementwise (|got - ref| <= atol + rtol * |ref|). Prints one line per case.
inline bool compare(const std::string& what, const float* got, const float* ref, size_t n, Tolerance tol) {
  cases()++;
  size_t faults = 0, worst = 0;
  double worst_excess = -1e300, max_err = 0;
  for (size_t i = 0; i < n; i++) {
    const double g = got[i], r = ref[i];
    const double err = std::fabs(g - r);
    const double excess = std::isfinite(g) ? err - (tol.atol + tol.rtol * std::fabs(r)) : 1e300;
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
    if (std::isfinite(err)) max_err = std::fmax(max_err, err);
    if (excess > 0) faults++;
  }
  if (faults == 0) return true;
  failures()++;
  std::printf("FAIL %s: %zu of %zu out of tolerance (atol %g, rtol %g), max |err| %g\n", what.c_str(), faults, n, tol.atol,
              tol.rtol, max_err);
  std::printf("  first:");
  for (size_t i = 0; i < n && i < 5; i++) std::printf(" [%zu] %.7g vs %.7g", i, double(got[i]), double(ref[i]));
  std::printf("\n  worst: [%zu] %.7g vs %.7g\n", worst, double(got[worst]), double(ref[worst]));
  size_t listed = 0;
  for (size_t i = 0; i < n && listed < 10; i++) {
    const double excess = std::fabs(double(got[i]) - ref[i]) - (tol.atol + tol.rtol * std::fabs(double(ref[i])));
    if (!(excess <= 0)) {
      std::printf("  fault [%zu] %.7g vs %.7g\n", i, double(got[i]), double(ref[i]));
      listed++;
    }
  }
  return false;
}

// Fails the check with a message when a Status is not ok (a launch error is a failure, not a crash).
inline bool expect_ok(const Status& st, const std::string& what) {
  if (st.ok()) return true;
  cases()++;
  failures()++;
  std::printf("FAIL %s: %s: %s\n", what.c_str(), code_name(st.code), st.message.c_str());
  return false;
}

inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Device memory that frees itself; copies to and from host vectors.
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n) { resize(n); }
  explicit DeviceArray(const std::vector<T>& host) {
    resize(host.size());
    upload(host);
  }
  ~DeviceArray() { cudaFree(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  void resize(size_t n) {
    cudaFree(ptr_);
    ptr_ = nullptr;
    n_ = n;
    if (n > 0 && cudaMalloc(reinterpret_cast<void**>(&ptr_), n * sizeof(T)) != cudaSuccess) {
      std::printf("FATAL: cudaMalloc of %zu bytes failed\n", n * sizeof(T));
      std::exit(2);
    }
  }
  void upload(const std::vector<T>& host) { cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice); }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost);
    return host;
  }
  T* get() const { return ptr_; }
  size_t size() const { return n_; }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

// The exit code and the summary line every check ends with.
inline int finish(const char* name) {
  std::printf("%s: %d cases, %d failed\n", name, cases(), failures());
  return failures() == 0 ? 0 : 1;
}

// When there is no device (nvcc build on a machine without a GPU): say so and exit 0.
inline bool have_device(const char* name) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    (void)cudaGetLastError();
    std::printf("%s: no CUDA device, nothing checked\n", name);
    return false;
  }
  return true;
}

}  // namespace lc::check
