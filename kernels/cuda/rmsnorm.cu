#include "kernels/cuda/rmsnorm.h"

#include "kernels/cuda/dtype.cuh"
#include "kernels/cuda/launch.h"

namespace kaon::kernels::gpu {
namespace {

// One block per normalised row. Row r lives at base + (r / rows_per_group) *
// group_stride + (r % rows_per_group) * cols: that covers contiguous rows
// (rows_per_group = 1, group_stride = cols) and heads inside a strided token
// row (rows_per_group = heads, group_stride = row stride) with one kernel.
// Each thread reads and writes only its own columns, so out == x is safe.
template <typename T, bool kAddResidual>
__global__ void RmsNormKernel(const T* x, T* residual, const T* weight, float eps, int64_t cols,
                              int64_t rows_per_group, int64_t group_stride, T* out) {
  __shared__ float shared[32];
  const int64_t r = blockIdx.x;
  const int64_t offset = (r / rows_per_group) * group_stride + (r % rows_per_group) * cols;
  const T* xr = x + offset;
  T* rr = kAddResidual ? residual + offset : nullptr;
  T* yr = out + offset;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = detail::ToFloat(xr[c]);
    if constexpr (kAddResidual) {
      const T sum = detail::FromFloat<T>(v + detail::ToFloat(rr[c]));
      rr[c] = sum;
      v = detail::ToFloat(sum);  // normalise what the residual stream now holds
    }
    ss += v * v;
  }
  const float total = detail::BlockSum(ss, shared);
  const float inv = rsqrtf(total / static_cast<float>(cols) + eps);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = detail::ToFloat(kAddResidual ? rr[c] : xr[c]);
    yr[c] = detail::FromFloat<T>(v * inv * detail::ToFloat(weight[c]));
  }
}

// Enough threads to cover short rows (head_dim 8 needs one warp), at most 256.
int ThreadsFor(int64_t cols) {
  int64_t t = (cols + 31) / 32 * 32;
  return static_cast<int>(t < 256 ? t : 256);
}

template <typename T, bool kAdd>
KernelStatus Launch(const char* op, const T* x, T* residual, const T* weight, float eps, int64_t rows,
                    int64_t cols, int64_t rows_per_group, int64_t group_stride, T* out, cudaStream_t stream) {
  if (rows == 0) return KernelStatus::Ok();
  RmsNormKernel<T, kAdd><<<static_cast<unsigned>(rows), ThreadsFor(cols), 0, stream>>>(
      x, residual, weight, eps, cols, rows_per_group, group_stride, out);
  return detail::LaunchStatus(op);
}

}  // namespace

template <typename T>
KernelStatus RmsNorm(const T* x, const T* weight, float eps, int64_t rows, int64_t cols, T* out,
                     cudaStream_t stream) {
  KAON_KERNEL_REQUIRE(x && weight && out, "rmsnorm: null pointer");
  KAON_KERNEL_REQUIRE(rows >= 0 && cols > 0 && rows <= detail::kMaxGridX, "rmsnorm: bad shape");
  KAON_KERNEL_REQUIRE(detail::Aligned<T>(x) && detail::Aligned<T>(weight) && detail::Aligned<T>(out),
                      "rmsnorm: misaligned pointer");
  return Launch<T, false>("rmsnorm", x, nullptr, weight, eps, rows, cols, 1, cols, out, stream);
}

template <typename T>
KernelStatus FusedAddRmsNorm(T* x, T* residual, const T* weight, float eps, int64_t rows, int64_t cols,
                             cudaStream_t stream) {
  KAON_KERNEL_REQUIRE(x && residual && weight, "fused_add_rmsnorm: null pointer");
  KAON_KERNEL_REQUIRE(x != residual, "fused_add_rmsnorm: x and residual must be distinct");
  KAON_KERNEL_REQUIRE(rows >= 0 && cols > 0 && rows <= detail::kMaxGridX, "fused_add_rmsnorm: bad shape");
  KAON_KERNEL_REQUIRE(detail::Aligned<T>(x) && detail::Aligned<T>(residual) && detail::Aligned<T>(weight),
                      "fused_add_rmsnorm: misaligned pointer");
  return Launch<T, true>("fused_add_rmsnorm", x, residual, weight, eps, rows, cols, 1, cols, x, stream);
}

template <typename T>
KernelStatus RmsNormHeads(T* x, int64_t row_stride, int64_t num_tokens, int64_t num_heads,
                          int64_t head_dim, const T* weight, float eps, cudaStream_t stream) {
  KAON_KERNEL_REQUIRE(x && weight, "rmsnorm_heads: null pointer");
  KAON_KERNEL_REQUIRE(num_tokens >= 0 && num_heads > 0 && head_dim > 0, "rmsnorm_heads: bad shape");
  KAON_KERNEL_REQUIRE(row_stride >= num_heads * head_dim,
                      "rmsnorm_heads: row stride smaller than the heads it holds");
  KAON_KERNEL_REQUIRE(num_tokens <= detail::kMaxGridX / num_heads, "rmsnorm_heads: too many rows");
  KAON_KERNEL_REQUIRE(detail::Aligned<T>(x) && detail::Aligned<T>(weight), "rmsnorm_heads: misaligned pointer");
  return Launch<T, false>("rmsnorm_heads", x, nullptr, weight, eps, num_tokens * num_heads, head_dim,
                          num_heads, row_stride, x, stream);
}

#define KAON_INSTANTIATE(T)                                                                           \
  template KernelStatus RmsNorm<T>(const T*, const T*, float, int64_t, int64_t, T*, cudaStream_t);    \
  template KernelStatus FusedAddRmsNorm<T>(T*, T*, const T*, float, int64_t, int64_t, cudaStream_t); \
  template KernelStatus RmsNormHeads<T>(T*, int64_t, int64_t, int64_t, int64_t, const T*, float, cudaStream_t);
KAON_GPU_FOR_EACH_DTYPE(KAON_INSTANTIATE)
#undef KAON_INSTANTIATE

}  // namespace kaon::kernels::gpu
