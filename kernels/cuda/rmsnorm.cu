#include "kernels/cuda/rmsnorm.cuh"

namespace kaon::kernels::gpu {
namespace {

constexpr int kThreads = 256;

// One block per row; the row's sum of squares is reduced in shared memory.
template <bool kAddResidual>
__global__ void RmsNormKernel(const float* x, float* residual, const float* weight, float eps,
                              int64_t cols, float* out) {
  __shared__ float partial[kThreads];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * cols;
  float* rr = kAddResidual ? residual + row * cols : nullptr;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = xr[c];
    if constexpr (kAddResidual) {
      v += rr[c];
      rr[c] = v;
    }
    ss += v * v;
  }
  partial[threadIdx.x] = ss;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  const float inv = rsqrtf(partial[0] / static_cast<float>(cols) + eps);
  float* yr = out + row * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = kAddResidual ? rr[c] : xr[c];
    yr[c] = v * inv * weight[c];
  }
}

}  // namespace

cudaError_t RmsNorm(const float* x, const float* weight, float eps, int64_t rows, int64_t cols,
                    float* out, cudaStream_t stream) {
  if (!x || !weight || !out || rows < 0 || cols <= 0 || rows > 0x7fffffff) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  RmsNormKernel<false><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, nullptr, weight, eps, cols, out);
  return cudaGetLastError();
}

cudaError_t FusedAddRmsNorm(float* x, float* residual, const float* weight, float eps, int64_t rows,
                            int64_t cols, cudaStream_t stream) {
  if (!x || !residual || !weight || rows < 0 || cols <= 0 || rows > 0x7fffffff) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  RmsNormKernel<true><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, residual, weight, eps, cols, x);
  return cudaGetLastError();
}

}  // namespace kaon::kernels::gpu
