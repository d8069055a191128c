// Host memory aligned for SIMD loads (64 bytes), owned, never thrown out of: allocation
// failure is a Status.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "status.h"

namespace lc {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept : data_(o.data_), size_(o.size_) {
    o.data_ = nullptr;
    o.size_ = 0;
  }

  Status allocate(size_t bytes, const std::string& what, bool zero = false) {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    const size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) return Status::Ok();
    void* p = nullptr;
    if (posix_memalign(&p, 64, rounded) != 0 || p == nullptr) {
      return out_of_memory("cannot allocate " + std::to_string(bytes) + " bytes for " + what);
    }
    if (zero) std::memset(p, 0, rounded);
    data_ = static_cast<uint8_t*>(p);
    size_ = rounded;
    return Status::Ok();
  }

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace lc
