// The only inline PTX of the project, in small wrappers the SIMT emulator implements too.
// All need sm_80 or newer (every architecture we build); compiled for an older one they trap.
//
// Tensor-core MMA, m16n8k16, A row-major x B column-major, f32 accumulate (warp-wide: all 32 lanes
// of a full warp call it together, with the same control flow):
//   void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4]);
//   void mma_m16n8k16_bf16(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);  // acc += a*b
//   ... and the same with _f16 for __half inputs.
// Fragments (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"), with
// g = lane / 4 and t = lane % 4; register r holds elements 2r (low 16 bits) and 2r+1 (high):
//   a[0] = A[g][2t..2t+1]     a[1] = A[g+8][2t..2t+1]   a[2] = A[g][2t+8..2t+9]   a[3] = A[g+8][2t+8..2t+9]
//   b[0] = B[2t..2t+1][g]     b[1] = B[2t+8..2t+9][g]          (B is K x N: 16 x 8)
//   c[0..1] = C[g][2t..2t+1]  c[2..3] = C[g+8][2t..2t+1]       (C/D are 16 x 8)
//
// ldmatrix (warp-wide): loads 8x8 matrices of 16-bit elements from shared memory. Lanes 8m..8m+7
// pass the addresses of rows 0..7 of matrix m (16-byte aligned, 16 bytes each); lanes of unused
// matrices pass anything. Lane l receives in r[m] the elements (row l/4, cols 2(l%4), 2(l%4)+1) of
// matrix m: exactly the A/B/C fragment layout above for one 8x8 quarter. _trans gives the
// transpose: (rows 2(l%4), 2(l%4)+1, col l/4).
//   void ldmatrix_x1(uint32_t& r, const void* smem_row);       (and _x1_trans)
//   void ldmatrix_x2(uint32_t (&r)[2], const void* smem_row);  (and _x2_trans)
//   void ldmatrix_x4(uint32_t (&r)[4], const void* smem_row);  (and _x4_trans)
//
// cp.async (per thread): 16-byte global -> shared copies that complete at a later wait.
//   void cp_async_16(void* smem_dst, const void* gmem_src);                 both 16-byte aligned
//   void cp_async_16_zfill(void* smem_dst, const void* gmem_src, int src_bytes);  copies src_bytes
//        (0..16) and zero-fills the rest: the way to load a tile edge without reading past the end
//   void cp_async_commit();          closes the group of copies issued since the last commit
//   template <int N> void cp_async_wait();   waits until at most N committed groups are pending
//   void cp_async_wait_all();        commit + wait for everything
// Then __syncthreads() before other threads read what this one copied. The emulator performs a
// thread's copies at its wait (not at issue), so a missing wait shows up as stale data there too.
#pragma once

#include <cstdint>

#include "cuda_api.h"

namespace lc {

#if LC_SIMT

namespace ptx_detail {
inline void mma(::lc_simt::WarpKind kind, float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                const float (&c)[4], const char* file, int line) {
  ::lc_simt::MmaIn in;
  for (int i = 0; i < 4; i++) in.a[i] = a[i];
  for (int i = 0; i < 2; i++) in.b[i] = b[i];
  for (int i = 0; i < 4; i++) in.c[i] = c[i];
  float out[4];
  ::lc_simt::warp_collective(kind, 0xffffffffu, &in, out, file, line);
  for (int i = 0; i < 4; i++) d[i] = out[i];
}
inline void ldmatrix(::lc_simt::WarpKind kind, uint32_t* r, int num, const void* row, const char* file, int line) {
  uint32_t out[4] = {0, 0, 0, 0};
  ::lc_simt::warp_collective(kind, 0xffffffffu, &row, out, file, line);
  for (int i = 0; i < num; i++) r[i] = out[i];
}
}  // namespace ptx_detail

inline void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4],
                              LC_SIMT_SITE_DECL) {
  ptx_detail::mma(::lc_simt::WarpKind::MmaBf16, d, a, b, c, LC_SIMT_SITE);
}
inline void mma_m16n8k16_bf16(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], LC_SIMT_SITE_DECL) {
  const float c[4] = {acc[0], acc[1], acc[2], acc[3]};
  ptx_detail::mma(::lc_simt::WarpKind::MmaBf16, acc, a, b, c, LC_SIMT_SITE);
}
inline void mma_m16n8k16_f16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4],
                             LC_SIMT_SITE_DECL) {
  ptx_detail::mma(::lc_simt::WarpKind::MmaF16, d, a, b, c, LC_SIMT_SITE);
}
inline void mma_m16n8k16_f16(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], LC_SIMT_SITE_DECL) {
  const float c[4] = {acc[0], acc[1], acc[2], acc[3]};
  ptx_detail::mma(::lc_simt::WarpKind::MmaF16, acc, a, b, c, LC_SIMT_SITE);
}

inline void ldmatrix_x1(uint32_t& r, const void* smem_row, LC_SIMT_SITE_DECL) {
  ptx_detail::ldmatrix(::lc_simt::WarpKind::Ldmatrix1, &r, 1, smem_row, LC_SIMT_SITE);
}
inline void ldmatrix_x2(uint32_t (&r)[2], const void* smem_row, LC_SIMT_SITE_DECL) {
  ptx_detail::ldmatrix(::lc_simt::WarpKind::Ldmatrix2, r, 2, smem_row, LC_SIMT_SITE);
}
inline void ldmatrix_x4(uint32_t (&r)[4], const void* smem_row, LC_SIMT_SITE_DECL) {
  ptx_detail::ldmatrix(::lc_simt::WarpKind::Ldmatrix4, r, 4, smem_row, LC_SIMT_SITE);
}
inline void ldmatrix_x1_trans(uint32_t& r, const void* smem_row, LC_SIMT_SITE_DECL) {
  ptx_detail::ldmatrix(::lc_simt::WarpKind::Ldmatrix1T, &r, 1, smem_row, LC_SIMT_SITE);
}
inline void ldmatrix_x2_trans(uint32_t (&r)[2], const void* smem_row, LC_SIMT_SITE_DECL) {
  ptx_detail::ldmatrix(::lc_simt::WarpKind::Ldmatrix2T, r, 2, smem_row, LC_SIMT_SITE);
}
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem_row, LC_SIMT_SITE_DECL) {
  ptx_detail::ldmatrix(::lc_simt::WarpKind::Ldmatrix4T, r, 4, smem_row, LC_SIMT_SITE);
}

inline void cp_async_16(void* smem_dst, const void* gmem_src, LC_SIMT_SITE_DECL) {
  ::lc_simt::cp_async(smem_dst, gmem_src, 16, 16, LC_SIMT_SITE);
}
inline void cp_async_16_zfill(void* smem_dst, const void* gmem_src, int src_bytes, LC_SIMT_SITE_DECL) {
  ::lc_simt::cp_async(smem_dst, gmem_src, 16, src_bytes, LC_SIMT_SITE);
}
inline void cp_async_commit(LC_SIMT_SITE_DECL) { ::lc_simt::cp_async_commit(LC_SIMT_SITE); }
template <int N>
inline void cp_async_wait(LC_SIMT_SITE_DECL) {
  static_assert(N >= 0, "cp_async_wait<N>: N is a count of groups");
  ::lc_simt::cp_async_wait(N, LC_SIMT_SITE);
}
inline void cp_async_wait_all(LC_SIMT_SITE_DECL) {
  ::lc_simt::cp_async_commit(LC_SIMT_SITE);
  ::lc_simt::cp_async_wait(0, LC_SIMT_SITE);
}

#else  // nvcc

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define LC_PTX_SM80 1
#else
#define LC_PTX_SM80 0
#endif

__device__ __forceinline__ uint32_t lc_smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                                  const float (&c)[4]) {
#if LC_PTX_SM80
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#else
  __trap();
#endif
}
__device__ __forceinline__ void mma_m16n8k16_bf16(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if LC_PTX_SM80
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();
#endif
}
__device__ __forceinline__ void mma_m16n8k16_f16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                                 const float (&c)[4]) {
#if LC_PTX_SM80
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#else
  __trap();
#endif
}
__device__ __forceinline__ void mma_m16n8k16_f16(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if LC_PTX_SM80
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();
#endif
}

__device__ __forceinline__ void ldmatrix_x1(uint32_t& r, const void* smem_row) {
#if LC_PTX_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r) : "r"(lc_smem_addr(smem_row)) : "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void* smem_row) {
#if LC_PTX_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(lc_smem_addr(smem_row))
               : "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem_row) {
#if LC_PTX_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(lc_smem_addr(smem_row))
               : "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void ldmatrix_x1_trans(uint32_t& r, const void* smem_row) {
#if LC_PTX_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
               : "=r"(r)
               : "r"(lc_smem_addr(smem_row))
               : "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const void* smem_row) {
#if LC_PTX_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(lc_smem_addr(smem_row))
               : "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem_row) {
#if LC_PTX_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(lc_smem_addr(smem_row))
               : "memory");
#else
  __trap();
#endif
}

__device__ __forceinline__ void cp_async_16(void* smem_dst, const void* gmem_src) {
#if LC_PTX_SM80
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(lc_smem_addr(smem_dst)),
               "l"(__cvta_generic_to_global(gmem_src))
               : "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void cp_async_16_zfill(void* smem_dst, const void* gmem_src, int src_bytes) {
#if LC_PTX_SM80
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(lc_smem_addr(smem_dst)),
               "l"(__cvta_generic_to_global(gmem_src)), "r"(src_bytes)
               : "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if LC_PTX_SM80
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#else
  __trap();
#endif
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  static_assert(N >= 0, "cp_async_wait<N>: N is a count of groups");
#if LC_PTX_SM80
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void cp_async_wait_all() {
#if LC_PTX_SM80
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#else
  __trap();
#endif
}

#undef LC_PTX_SM80

#endif  // LC_SIMT

}  // namespace lc
