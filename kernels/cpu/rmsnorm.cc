#include "kernels/cpu/rmsnorm.h"

#include <cmath>

namespace kaon::kernels::cpu {
namespace {

// Sum of squares in double: the per-row cost is negligible next to the GEMMs
// and it keeps the CPU twin a tight reference for the GPU kernels.
inline float InvRms(const float* row, int64_t cols, float eps) {
  double ss = 0.0;
  for (int64_t c = 0; c < cols; ++c) ss += static_cast<double>(row[c]) * row[c];
  return static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(cols) + eps));
}

}  // namespace

KernelStatus RmsNorm(const float* x, const float* weight, float eps, int64_t rows,
                     int64_t cols, float* out) {
  KAON_KERNEL_REQUIRE(x && weight && out, "rmsnorm: null pointer");
  KAON_KERNEL_REQUIRE(rows >= 0 && cols > 0, "rmsnorm: bad shape");
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = out + r * cols;
    const float inv = InvRms(xr, cols, eps);
    for (int64_t c = 0; c < cols; ++c) yr[c] = xr[c] * inv * weight[c];
  }
  return KernelStatus::Ok();
}

KernelStatus FusedAddRmsNorm(float* x, float* residual, const float* weight, float eps,
                             int64_t rows, int64_t cols) {
  KAON_KERNEL_REQUIRE(x && residual && weight, "fused_add_rmsnorm: null pointer");
  KAON_KERNEL_REQUIRE(rows >= 0 && cols > 0, "fused_add_rmsnorm: bad shape");
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * cols;
    float* rr = residual + r * cols;
    for (int64_t c = 0; c < cols; ++c) rr[c] += xr[c];
    const float inv = InvRms(rr, cols, eps);
    for (int64_t c = 0; c < cols; ++c) xr[c] = rr[c] * inv * weight[c];
  }
  return KernelStatus::Ok();
}

}  // namespace kaon::kernels::cpu
