// Device-side helpers shared by the kernels in this folder (not a public API):
// every kernel loads its activation dtype T, computes in fp32 and rounds once
// on the store, so the three dtypes differ only in these two conversions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace kaon::kernels::gpu::detail {

template <typename T>
__device__ __forceinline__ float ToFloat(T v);
template <>
__device__ __forceinline__ float ToFloat<float>(float v) { return v; }
template <>
__device__ __forceinline__ float ToFloat<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ __forceinline__ float ToFloat<__half>(__half v) { return __half2float(v); }

// Round to nearest even, as the host-side conversions and PyTorch do.
template <typename T>
__device__ __forceinline__ T FromFloat(float v);
template <>
__device__ __forceinline__ float FromFloat<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ __half FromFloat<__half>(float v) { return __float2half_rn(v); }

// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024).
// Every thread gets the total. `shared` holds 32 floats.
__device__ __forceinline__ float BlockSum(float v, float* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int warps = blockDim.x >> 5;
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < warps; ++w) total += shared[w];  // same order in every thread
  return total;
}

}  // namespace kaon::kernels::gpu::detail

// Explicit instantiation for the three activation dtypes.
#define KAON_GPU_FOR_EACH_DTYPE(X) X(float) X(__nv_bfloat16) X(__half)
