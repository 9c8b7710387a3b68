#pragma once

#include <cstdint>

#include "kernels/common/kernel_status.h"

namespace kaon::kernels::cpu {

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight. In place is fine
// (out == x). Also used per head for Qwen3's q/k norm (rows = tokens * heads).
KernelStatus RmsNorm(const float* x, const float* weight, float eps, int64_t rows,
                     int64_t cols, float* out);

// The pre-norm residual step, fused so the residual stream is read once:
// residual += x; x = RmsNorm(residual) * weight.
KernelStatus FusedAddRmsNorm(float* x, float* residual, const float* weight, float eps,
                             int64_t rows, int64_t cols);

}  // namespace kaon::kernels::cpu
