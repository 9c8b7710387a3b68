// CUDA RMSNorm, the fused residual-add RMSNorm, and the per-head RMSNorm of
// Qwen3's q/k norm. Twin of kernels/cpu/rmsnorm.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/common/kernel_status.h"

namespace kaon::kernels::gpu {

// All pointers are device pointers; T is float, __nv_bfloat16 or __half; the
// weight has the activation dtype (as checkpoints store it). Sums and the
// scaling run in fp32; each output is rounded to T once.

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight, x and out
// contiguous [rows, cols]. In place is fine (out == x).
template <typename T>
KernelStatus RmsNorm(const T* x, const T* weight, float eps, int64_t rows, int64_t cols, T* out,
                     cudaStream_t stream);

// The pre-norm residual step: residual += x (rounded to T, as the model's
// residual stream is stored in T); x = RmsNorm(residual) * weight.
template <typename T>
KernelStatus FusedAddRmsNorm(T* x, T* residual, const T* weight, float eps, int64_t rows, int64_t cols,
                             cudaStream_t stream);

// Per-head RMSNorm in place: x holds num_tokens rows of row_stride elements
// (e.g. the fused qkv buffer), each row starting with num_heads heads of
// head_dim; every head is normalised with the shared weight[head_dim].
// Elements past num_heads * head_dim in a row are not touched.
template <typename T>
KernelStatus RmsNormHeads(T* x, int64_t row_stride, int64_t num_tokens, int64_t num_heads,
                          int64_t head_dim, const T* weight, float eps, cudaStream_t stream);

}  // namespace kaon::kernels::gpu
