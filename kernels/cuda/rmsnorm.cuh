// CUDA RMSNorm (and the fused residual add), fp32. Twin of kernels/cpu/rmsnorm.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace kaon::kernels::gpu {

// Device pointers. Returns cudaErrorInvalidValue for bad shapes or null
// pointers, otherwise the launch status.
cudaError_t RmsNorm(const float* x, const float* weight, float eps, int64_t rows, int64_t cols,
                    float* out, cudaStream_t stream);

cudaError_t FusedAddRmsNorm(float* x, float* residual, const float* weight, float eps, int64_t rows,
                            int64_t cols, cudaStream_t stream);

}  // namespace kaon::kernels::gpu
