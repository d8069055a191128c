// Kernel launches and dynamic shared memory, written once for nvcc and for the SIMT emulator.
//
//   LC_LAUNCH(kernel, grid, block, smem, stream, args...)
//     nvcc:      kernel<<<grid, block, smem, stream>>>(args...)
//     emulator:  lc_simt::launch_kernel(...): runs (or, during stream capture, records) the
//                kernel with the arguments converted to its parameter types.
//     grid and block are dim3 or integers; smem is the dynamic shared memory in bytes. Errors are
//     reported as for <<<>>>: check them with CUDA_TRY(cudaGetLastError()) right after.
//     A template kernel goes in parentheses, so its commas do not split the macro arguments:
//       LC_LAUNCH((matvec_kernel<__nv_bfloat16, 128>), grid, 128, 0, stream, out, w, x, rows, cols);
//     A kernel with no arguments: LC_LAUNCH(probe_kernel, 1, 32, 0, stream);
//
//   LC_DYNAMIC_SMEM(T, name)
//     Inside a kernel: declares `T* name` pointing at the launch's dynamic shared memory (the
//     `smem` bytes of LC_LAUNCH), 128-byte aligned. Use it instead of `extern __shared__ T name[]`,
//     which the emulator cannot express. Above 48 KiB the kernel needs
//     cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) first (up
//     to 163 KiB on sm_80), on the GPU and in the emulator alike.
#pragma once

#include "cuda_api.h"

#if LC_SIMT

#define LC_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::lc_simt::launch_kernel(#kernel, kernel, dim3(grid), dim3(block), (smem), (stream) __VA_OPT__(, ) __VA_ARGS__)

#define LC_DYNAMIC_SMEM(T, name) T* name = reinterpret_cast<T*>(::lc_simt::dynamic_smem())

#else

#define LC_LAUNCH(kernel, grid, block, smem, stream, ...) \
  (kernel)<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)

#define LC_DYNAMIC_SMEM(T, name)                                      \
  extern __shared__ __align__(128) unsigned char lc_dynamic_smem_[]; \
  T* name = reinterpret_cast<T*>(lc_dynamic_smem_)

#endif
