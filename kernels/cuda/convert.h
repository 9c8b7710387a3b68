// CUDA element-wise dtype conversion (weights at load time, logits out).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/common/kernel_status.h"

namespace kaon::kernels::gpu {

// out[i] = Dst(in[i]) for i < n, rounding to nearest even. Instantiated for
// float -> __nv_bfloat16, float -> __half, __nv_bfloat16 -> float, __half ->
// float, float -> float, and every pair of __nv_bfloat16 and __half (the
// weight-staging path converts checkpoint dtypes on the device). Device pointers; in and out must not overlap.
template <typename Src, typename Dst>
KernelStatus Convert(const Src* in, int64_t n, Dst* out, cudaStream_t stream);

}  // namespace kaon::kernels::gpu
