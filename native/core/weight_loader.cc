#include "weight_loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "half.h"
#include "quantize.h"

namespace lc {

namespace {

constexpr size_t kChunkBytes = size_t(8) << 20;  // source bytes read per chunk

struct SrcLayout {
  int64_t block_elems;
  int64_t block_bytes;
};

SrcLayout src_layout(SrcType t) {
  switch (t) {
    case SrcType::F32: return {1, 4};
    case SrcType::F16:
    case SrcType::BF16: return {1, 2};
    case SrcType::Q8_0: return {32, 34};
    case SrcType::Q4_0: return {32, 18};
  }
  return {1, 1};
}

// Bytes per row in the two planar regions of a weight (aux is 0 for plain types).
struct RowBytes {
  size_t main;
  size_t aux;
};

RowBytes row_bytes(const Weight& w) {
  switch (w.dtype) {
    case DType::F32: return {size_t(w.cols) * 4, 0};
    case DType::F16:
    case DType::BF16: return {size_t(w.cols) * 2, 0};
    case DType::Q8_0: return {size_t(w.cols), size_t(w.cols / kQ8Group) * 2};
    case DType::INT4: return {size_t(w.cols / 2), size_t(w.cols / w.group) * 4};
  }
  return {0, 0};
}

// One source row -> f32.
void decode_src_row(float* out, const uint8_t* src, SrcType t, int64_t cols) {
  switch (t) {
    case SrcType::F32: std::memcpy(out, src, size_t(cols) * 4); break;
    case SrcType::F16:
      for (int64_t c = 0; c < cols; c++) {
        uint16_t h;
        std::memcpy(&h, src + 2 * c, 2);
        out[c] = f16_to_f32(h);
      }
      break;
    case SrcType::BF16:
      for (int64_t c = 0; c < cols; c++) {
        uint16_t h;
        std::memcpy(&h, src + 2 * c, 2);
        out[c] = bf16_to_f32(h);
      }
      break;
    case SrcType::Q8_0:
      for (int64_t b = 0; b < cols / 32; b++) {
        const uint8_t* blk = src + b * 34;
        uint16_t d16;
        std::memcpy(&d16, blk, 2);
        const float d = f16_to_f32(d16);
        for (int j = 0; j < 32; j++) out[b * 32 + j] = float(int8_t(blk[2 + j])) * d;
      }
      break;
    case SrcType::Q4_0:
      for (int64_t b = 0; b < cols / 32; b++) {
        const uint8_t* blk = src + b * 18;
        uint16_t d16;
        std::memcpy(&d16, blk, 2);
        const float d = f16_to_f32(d16);
        for (int j = 0; j < 16; j++) {
          out[b * 32 + j] = float((blk[2 + j] & 0x0F) - 8) * d;
          out[b * 32 + j + 16] = float((blk[2 + j] >> 4) - 8) * d;
        }
      }
      break;
  }
}

// Converts `rows` source rows into the destination rows' main/aux regions.
Status convert_rows(uint8_t* main, uint8_t* aux, const uint8_t* src, SrcType st, const Weight& w, int64_t rows,
                    std::vector<float>& tmp, const std::string& name) {
  const int64_t cols = w.cols;
  const size_t src_row = size_t(src_bytes(st, 1, cols));
  const RowBytes rb = row_bytes(w);
  for (int64_t r = 0; r < rows; r++) {
    const uint8_t* s = src + size_t(r) * src_row;
    uint8_t* m = main + size_t(r) * rb.main;
    uint8_t* a = aux + size_t(r) * rb.aux;
    // bit-exact regroupings first
    if (st == SrcType::Q8_0 && w.dtype == DType::Q8_0) {
      for (int64_t b = 0; b < cols / 32; b++) {
        std::memcpy(a + 2 * b, s + 34 * b, 2);
        std::memcpy(m + 32 * b, s + 34 * b + 2, 32);
      }
      continue;
    }
    if (st == SrcType::Q4_0 && w.dtype == DType::INT4 && w.group == 32) {
      for (int64_t b = 0; b < cols / 32; b++) {
        uint16_t d16;
        std::memcpy(&d16, s + 18 * b, 2);
        const float min = -8.0f * f16_to_f32(d16);
        const uint16_t min16 = f32_to_f16(min);
        if (f16_to_f32(min16) != min) {
          return model_format("tensor \"" + name + "\": Q4_0 scale " + std::to_string(f16_to_f32(d16)) +
                              " cannot be repacked exactly (its -8x offset overflows f16)");
        }
        std::memcpy(a + 4 * b, &d16, 2);
        std::memcpy(a + 4 * b + 2, &min16, 2);
        std::memcpy(m + 16 * b, s + 18 * b + 2, 16);
      }
      continue;
    }
    float* x = tmp.data();
    decode_src_row(x, s, st, cols);
    switch (w.dtype) {
      case DType::F32: std::memcpy(m, x, size_t(cols) * 4); break;
      case DType::F16:
        for (int64_t c = 0; c < cols; c++) {
          const uint16_t h = f32_to_f16(x[c]);
          std::memcpy(m + 2 * c, &h, 2);
        }
        break;
      case DType::BF16:
        for (int64_t c = 0; c < cols; c++) {
          const uint16_t h = f32_to_bf16(x[c]);
          std::memcpy(m + 2 * c, &h, 2);
        }
        break;
      case DType::Q8_0:
        quantize_row_q8_0(reinterpret_cast<int8_t*>(m), reinterpret_cast<uint16_t*>(a), x, cols);
        break;
      case DType::INT4:
        quantize_row_int4(m, reinterpret_cast<uint16_t*>(a), x, cols, w.group);
        break;
    }
  }
  return Status::Ok();
}

class FileReader {
 public:
  ~FileReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status open(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return io_error("cannot open " + path + ": " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd_, &st) != 0) return io_error("cannot stat " + path + ": " + std::strerror(errno));
    size_ = uint64_t(st.st_size);
    path_ = path;
    return Status::Ok();
  }
  uint64_t size() const { return size_; }
  Status read(uint8_t* dst, uint64_t offset, size_t n) {
    size_t done = 0;
    while (done < n) {
      const ssize_t got = ::pread(fd_, dst + done, n - done, off_t(offset + done));
      if (got < 0) {
        if (errno == EINTR) continue;
        return io_error("read failed in " + path_ + ": " + std::strerror(errno));
      }
      if (got == 0) return model_format(path_ + " is truncated: it ended at byte " + std::to_string(offset + done));
      done += size_t(got);
    }
    return Status::Ok();
  }

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_;
};

}  // namespace

bool src_type_from_name(const std::string& name, SrcType* out) {
  for (SrcType t : {SrcType::F32, SrcType::F16, SrcType::BF16, SrcType::Q8_0, SrcType::Q4_0}) {
    if (name == src_type_name(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

const char* src_type_name(SrcType t) {
  switch (t) {
    case SrcType::F32: return "f32";
    case SrcType::F16: return "f16";
    case SrcType::BF16: return "bf16";
    case SrcType::Q8_0: return "q8_0";
    case SrcType::Q4_0: return "q4_0";
  }
  return "?";
}

uint64_t src_bytes(SrcType t, int64_t rows, int64_t cols) {
  const SrcLayout l = src_layout(t);
  if (cols % l.block_elems != 0) return 0;
  return uint64_t(rows) * uint64_t(cols / l.block_elems) * uint64_t(l.block_bytes);
}

Status check_conversion(SrcType src, const Weight& dst, const std::string& name) {
  if (src_bytes(src, 1, dst.cols) == 0) {
    return model_format("tensor \"" + name + "\": " + std::to_string(dst.cols) + " columns do not fit " +
                        src_type_name(src) + " blocks of 32");
  }
  if (src == SrcType::Q4_0 && dst.dtype == DType::INT4 && dst.group != 32) {
    return invalid_argument("tensor \"" + name + "\": q4_0 repacks exactly only into int4 groups of 32");
  }
  return Status::Ok();
}

Status load_weight(const WeightSource& src, const Weight& w, const WeightSink& sink, const std::string& name,
                   const std::function<void(uint64_t)>& progress) {
  LC_TRY(check_conversion(src.type, w, name));
  const uint64_t want = src_bytes(src.type, w.rows, w.cols);
  if (src.nbytes != want) {
    return model_format("tensor \"" + name + "\": " + std::to_string(src.nbytes) + " bytes given, " +
                        std::to_string(want) + " expected for " + src_type_name(src.type) + " [" +
                        std::to_string(w.rows) + ", " + std::to_string(w.cols) + "]");
  }
  FileReader reader;
  if (src.mem == nullptr) {
    LC_TRY(reader.open(src.file));
    if (src.offset > reader.size() || want > reader.size() - src.offset) {
      return model_format("tensor \"" + name + "\" lies outside " + src.file + " (bytes " + std::to_string(src.offset) +
                          ".." + std::to_string(src.offset + want) + " of " + std::to_string(reader.size()) +
                          "): the file is truncated or corrupt");
    }
  }

  const size_t src_row = size_t(src_bytes(src.type, 1, w.cols));
  const RowBytes rb = row_bytes(w);
  const int64_t chunk_rows = std::max<int64_t>(1, int64_t(kChunkBytes / src_row));
  const size_t aux_base = size_t(w.rows) * rb.main;

  // Same type, host destination: read straight into place.
  const bool plain_copy = (w.dtype == DType::F32 && src.type == SrcType::F32) ||
                          (w.dtype == DType::F16 && src.type == SrcType::F16) ||
                          (w.dtype == DType::BF16 && src.type == SrcType::BF16);
  std::unique_ptr<uint8_t[]> staging_src, staging_dst;
  std::vector<float> tmp;
  try {
    if (!(plain_copy && sink.host != nullptr) && src.mem == nullptr) {
      staging_src.reset(new uint8_t[size_t(chunk_rows) * src_row]);
    }
    if (sink.host == nullptr) staging_dst.reset(new uint8_t[size_t(chunk_rows) * (rb.main + rb.aux)]);
    tmp.resize(size_t(w.cols));
  } catch (const std::bad_alloc&) {
    return out_of_memory("cannot allocate load buffers for tensor \"" + name + "\"");
  }

  for (int64_t r0 = 0; r0 < w.rows; r0 += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, w.rows - r0);
    const uint64_t off = uint64_t(r0) * src_row;
    const size_t n = size_t(rows) * src_row;
    uint8_t* main = sink.host ? sink.host + size_t(r0) * rb.main : staging_dst.get();
    uint8_t* aux = sink.host ? sink.host + aux_base + size_t(r0) * rb.aux : staging_dst.get() + size_t(rows) * rb.main;
    if (plain_copy) {
      if (src.mem != nullptr) {
        std::memcpy(main, src.mem + off, n);
      } else {
        LC_TRY(reader.read(main, src.offset + off, n));
      }
    } else {
      const uint8_t* s = src.mem;
      if (s != nullptr) {
        s += off;
      } else {
        LC_TRY(reader.read(staging_src.get(), src.offset + off, n));
        s = staging_src.get();
      }
      LC_TRY(convert_rows(main, aux, s, src.type, w, rows, tmp, name));
    }
    if (sink.host == nullptr) {
      LC_TRY(sink.write(size_t(r0) * rb.main, main, size_t(rows) * rb.main));
      if (rb.aux != 0) LC_TRY(sink.write(aux_base + size_t(r0) * rb.aux, aux, size_t(rows) * rb.aux));
    }
    if (progress) progress(n);
  }
  return Status::Ok();
}

}  // namespace lc
