// SIMT emulator prelude: the first thing every CUDA source sees when g++ compiles it for the CPU
// (CMake force-includes it through the generated wrapper, see lc_add_simt_sources; cuda_api.h
// includes it too). Order matters and is the point of this file:
//   1. the real CUDA headers, whose host paths give the types (dim3, uint3, float4, __half,
//      __nv_bfloat16, cudaError_t, cudaDeviceProp ...) and the runtime API declarations;
//   2. then the emulation: keywords (__global__, __shared__ ...) become plain C++, builtins and
//      intrinsics become functions of the emulator (simt_device.h), and the runtime declared by
//      the real headers is defined by cuda_runtime_simt.cc.
// CUDA headers included after this point would see the emulation macros: include any you need
// here, not in kernel files.
#pragma once

#if defined(__CUDACC__)
#error "native/cuda/simt/simt.h emulates CUDA for g++; nvcc builds use the real toolchain"
#endif

#ifndef LC_SIMT
#define LC_SIMT 1
#endif

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <vector_types.h>

#include "cuda_runtime_simt.h"
#include "simt_device.h"
