// Source type -> engine storage (lib/model/weights.ts picks the storage; this file converts):
//
//   source          storage          how                                            exact?
//   f32/f16/bf16    the same         copied                                         yes
//   f32/f16/bf16    other / q8_0 /   decoded to f32, encoded by quantize.cc         rounding of the encoder
//                   int4             (quantize at load; round to nearest)
//   Q8_0            Q8_0             codes and scales regrouped                     yes
//   Q4_0            INT4 g32         scale = d, min = -8·d (-8·d is exact in f16;   yes
//                                    an overflowing one is an error)
//   Q4_1            INT4 g32         scale = d, min = m, same nibble order          yes
//   Q5_0            Q8_0             codes (nib | hbit<<4) - 16 in -16..15, scale d  yes
//   Q4_K            INT4 g32         per 32-weight sub-block k: scale = f16(d·sc_k), no: each parameter is
//                                    min = f16(-(dmin·m_k)), the products in f32     rounded once to f16
//                                    as ggml forms them; codes regrouped            (relative error <= 2^-11)
//   NF4 (bnb)       NF4              codes regrouped, f32 absmax copied (core/nf4.h) yes
//   f32/f16/bf16    NF4              absmax per 64-block, nearest NF4 code           rounding of the encoder
//   Q5_1, Q5_K,     Q8_0             decoded to ggml's exact f32 values, then each  no: see below
//   Q6_K, Q8_K                       32-block re-quantized (quantize_row_q8_0)
//
// Why re-quantizing into Q8_0 adds little: Q8_0 spends 255 levels on each 32-weight block
// (step absmax/127, recomputed per block of 32), while Q5_1/Q5_K spend 32 levels (step about
// range/31) and Q6_K 64 (step about absmax/32, per 16) on the same or a larger span. The added
// rounding error (at most half a Q8_0 step) is therefore a fraction of the source's own, and
// adds in variance. Measured (test/formats/ggml-blocks.test.ts): rms(added) / rms(source's own
// quantization error) = 0.29 for ggml's Q6_K test blocks, 0.14 for Q5_1 on Gaussian weights;
// 0.75 for Q8_K, which has Q8_0's own precision (the result stays at int8 level).
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
#include "nf4.h"
#include "quantize.h"

namespace lc {

namespace {

constexpr size_t kChunkBytes = size_t(8) << 20;  // source bytes read per chunk

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
    case DType::NF4: return {size_t(w.cols / 2), size_t(w.cols / kNf4Block) * 4};
  }
  return {0, 0};
}

bool is_int4_repack(SrcType t) { return t == SrcType::Q4_0 || t == SrcType::Q4_1 || t == SrcType::Q4_K; }

Status param_overflow(const std::string& name, SrcType st, float v) {
  return model_format("tensor \"" + name + "\": " + src_type_name(st) + " parameter " + std::to_string(v) +
                      " does not fit the f16 parameters of int4 storage");
}

// One 32-block's {scale, min} as f16; fails when a finite value overflows f16.
bool put_int4_params(uint8_t* a, float scale, float min) {
  const uint16_t s16 = f32_to_f16(scale), m16 = f32_to_f16(min);
  if (std::isinf(f16_to_f32(s16)) != std::isinf(scale) || std::isinf(f16_to_f32(m16)) != std::isinf(min)) return false;
  std::memcpy(a, &s16, 2);
  std::memcpy(a + 2, &m16, 2);
  return true;
}

// Exact or near-exact repacks of one row: 4-bit sources into INT4 g32, Q8_0/Q5_0 into Q8_0.
// Returns false when the pair has no such path (then the row goes through f32); a repack that
// cannot be done sets *status.
bool repack_row(uint8_t* m, uint8_t* a, const uint8_t* s, SrcType st, const Weight& w, Status* status,
                const std::string& name) {
  const int64_t cols = w.cols;
  if (w.dtype == DType::NF4 && st == SrcType::NF4) {
    repack_row_nf4(m, reinterpret_cast<float*>(a), s, cols);
    return true;
  }
  if (w.dtype == DType::Q8_0 && st == SrcType::Q8_0) {
    for (int64_t b = 0; b < cols / 32; b++) {
      std::memcpy(a + 2 * b, s + 34 * b, 2);
      std::memcpy(m + 32 * b, s + 34 * b + 2, 32);
    }
    return true;
  }
  if (w.dtype == DType::Q8_0 && st == SrcType::Q5_0) {
    for (int64_t b = 0; b < cols / 32; b++) {
      const uint8_t* blk = s + 22 * b;
      uint32_t qh;
      std::memcpy(&qh, blk + 2, 4);
      std::memcpy(a + 2 * b, blk, 2);
      for (int j = 0; j < 32; j++) {
        const int nib = j < 16 ? (blk[6 + j] & 0x0F) : (blk[6 + j - 16] >> 4);
        m[32 * b + j] = uint8_t(int8_t((nib | int((qh >> j) & 1u) << 4) - 16));
      }
    }
    return true;
  }
  if (w.dtype != DType::INT4 || w.group != 32 || !is_int4_repack(st)) return false;
  if (st == SrcType::Q4_0 || st == SrcType::Q4_1) {
    const int64_t bb = st == SrcType::Q4_0 ? 18 : 20;
    for (int64_t b = 0; b < cols / 32; b++) {
      const uint8_t* blk = s + bb * b;
      const float d = f16_to_f32(uint16_t(blk[0] | blk[1] << 8));
      if (st == SrcType::Q4_0) {
        const float min = -8.0f * d;
        if (!put_int4_params(a + 4 * b, d, min) || f16_to_f32(f32_to_f16(min)) != min) {
          *status = model_format("tensor \"" + name + "\": Q4_0 scale " + std::to_string(d) +
                                 " cannot be repacked exactly (its -8x offset overflows f16)");
          return true;
        }
      } else {
        std::memcpy(a + 4 * b, blk, 4);  // {d, m}: already {scale, min} in f16
      }
      std::memcpy(m + 16 * b, blk + bb - 16, 16);
    }
    return true;
  }
  // Q4_K: 8 sub-blocks of 32 per super-block; sub-block k's codes are the low (k even) or high
  // (k odd) nibbles of the 32 bytes q[32·(k/2) ..]; INT4 g32 wants weight j and j+16 in one byte.
  for (int64_t sb = 0; sb < cols / 256; sb++) {
    const uint8_t* blk = s + 144 * sb;
    const float d = f16_to_f32(uint16_t(blk[0] | blk[1] << 8));
    const float dmin = f16_to_f32(uint16_t(blk[2] | blk[3] << 8));
    for (int k = 0; k < 8; k++) {
      uint8_t sc, mn;
      k_scale_min(blk + 4, k, &sc, &mn);
      const float scale = d * float(sc), min = -(dmin * float(mn));
      const int64_t g = sb * 8 + k;
      if (!put_int4_params(a + 4 * g, scale, min)) {
        *status = param_overflow(name, st, std::isinf(f16_to_f32(f32_to_f16(scale))) ? scale : min);
        return true;
      }
      const uint8_t* q = blk + 16 + 32 * (k / 2);
      const int shift = (k % 2) * 4;
      for (int j = 0; j < 16; j++) {
        m[16 * g + j] = uint8_t(((q[j] >> shift) & 0x0F) | (((q[j + 16] >> shift) & 0x0F) << 4));
      }
    }
  }
  return true;
}

// Converts `rows` source rows into the destination rows' main/aux regions.
Status convert_rows(uint8_t* main, uint8_t* aux, const uint8_t* src, SrcType st, const Weight& w, int64_t rows,
                    std::vector<float>& tmp, const std::string& name) {
  const int64_t cols = w.cols;
  const size_t src_row = size_t(src_bytes(st, 1, cols));
  const BlockLayout layout = src_layout(st);
  const RowBytes rb = row_bytes(w);
  for (int64_t r = 0; r < rows; r++) {
    const uint8_t* s = src + size_t(r) * src_row;
    uint8_t* m = main + size_t(r) * rb.main;
    uint8_t* a = aux + size_t(r) * rb.aux;
    Status status;
    if (repack_row(m, a, s, st, w, &status, name)) {
      LC_TRY(status);
      continue;
    }
    float* x = tmp.data();
    dequantize_blocks(x, s, st, cols / layout.elems);
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
      case DType::NF4:
        quantize_row_nf4(m, reinterpret_cast<float*>(a), x, cols);
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

uint64_t src_bytes(SrcType t, int64_t rows, int64_t cols) {
  const BlockLayout l = src_layout(t);
  if (cols % l.elems != 0) return 0;
  return uint64_t(rows) * uint64_t(cols / l.elems) * uint64_t(l.bytes);
}

Status check_conversion(SrcType src, const Weight& dst, const std::string& name) {
  if (src_bytes(src, 1, dst.cols) == 0) {
    return model_format("tensor \"" + name + "\": " + std::to_string(dst.cols) + " columns do not fit " +
                        src_type_name(src) + " blocks of " + std::to_string(src_layout(src).elems));
  }
  if (is_int4_repack(src) && dst.dtype == DType::INT4 && dst.group != 32) {
    return invalid_argument("tensor \"" + name + "\": " + src_type_name(src) +
                            " repacks into int4 only with groups of 32 (its own sub-blocks)");
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
