// The CUDA runtime for this build: the real one under nvcc (and in host C++ files of the CUDA
// variant), the SIMT emulator's when LC_SIMT is defined to 1 (the llama_cuda_simt_rt target sets
// it for everything that links the emulator). Backend and kernel code include this instead of
// <cuda_runtime.h>, so the same source compiles against both.
//
//   LC_SIMT        1 in the emulator build, 0 otherwise
//   LC_CUDA_ARCH   the architecture the code is being compiled for: __CUDA_ARCH__ in nvcc's device
//                  passes, 800 in the emulator (it models sm_80), 0 in host code
//   LC_DEVICE_CODE 1 where device code is being compiled (nvcc device passes, and the emulator,
//                  where host and device code are one pass)
#pragma once

#if defined(LC_SIMT) && LC_SIMT
#if defined(__CUDACC__)
#error "LC_SIMT is set but this file is compiled by nvcc"
#endif
#include "simt/simt.h"
#define LC_CUDA_ARCH 800
#define LC_DEVICE_CODE 1
#else
#undef LC_SIMT
#define LC_SIMT 0
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#if defined(__CUDA_ARCH__)
#define LC_CUDA_ARCH __CUDA_ARCH__
#define LC_DEVICE_CODE 1
#else
#define LC_CUDA_ARCH 0
#define LC_DEVICE_CODE 0
#endif
#endif
