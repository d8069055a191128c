// Reads weight bytes from model files (or from memory) and converts them into the storage
// layout of their Weight (dtype.h), a chunk of rows at a time: no whole-file buffer, no second
// copy of the weights. Which source type becomes which storage type, and how exactly: the
// table at the top of weight_loader.cc. Source encodings and their decoders: ggml_blocks.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "ggml_blocks.h"
#include "status.h"
#include "tensor.h"

namespace lc {

struct WeightSource {
  SrcType type = SrcType::F32;
  std::string file;             // read from here when mem is null
  uint64_t offset = 0;
  uint64_t nbytes = 0;
  const uint8_t* mem = nullptr;  // or from this memory (kept alive by the caller)
};

// Bytes a source of this type needs for a [rows][cols] tensor, 0 when cols does not fit its blocks.
uint64_t src_bytes(SrcType t, int64_t rows, int64_t cols);

// Whether `src` can be converted into `dst`'s dtype (and group); explains why not.
Status check_conversion(SrcType src, const Weight& dst, const std::string& name);

// Where converted rows go: the backend gives host memory for the whole weight (CPU) or a
// writer for ranges (GPU staging); offsets are into the weight's storage (dtype.h layout).
struct WeightSink {
  uint8_t* host = nullptr;                                                 // direct, when not null
  std::function<Status(size_t offset, const void* src, size_t n)> write;  // otherwise
};

// Fills dst (shape and dtype already set) from src. progress(bytes) is called after each chunk
// with the source bytes just consumed.
Status load_weight(const WeightSource& src, const Weight& dst, const WeightSink& sink, const std::string& name,
                   const std::function<void(uint64_t)>& progress);

}  // namespace lc
