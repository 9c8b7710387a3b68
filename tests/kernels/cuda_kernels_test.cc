// Each CUDA kernel against its CPU twin on random inputs. Skipped (not failed)
// where no GPU is present: CI builds this for sm_90a and runs it on the GPU
// machine through tests/gpu/check.sh.
#include <cmath>
#include <random>
#include <vector>

#include <cuda_runtime.h>

#include "gtest/gtest.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cuda/rmsnorm.cuh"

namespace kaon::kernels {
namespace {

bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

std::vector<float> Random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(CudaKernels, RmsNormMatchesCpuTwin) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU";
  for (int64_t cols : {8, 64, 4096, 5120}) {
    const int64_t rows = 33;
    auto x = Random(rows * cols, cols), w = Random(cols, cols + 1), res = Random(rows * cols, cols + 2);
    std::vector<float> cpu(rows * cols), gpu(rows * cols);
    ASSERT_TRUE(cpu::RmsNorm(x.data(), w.data(), 1e-6f, rows, cols, cpu.data()).ok());
    float *dx, *dw, *dy;
    ASSERT_EQ(cudaMalloc(&dx, x.size() * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&dw, w.size() * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&dy, x.size() * 4), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(dw, w.data(), w.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(gpu::RmsNorm(dx, dw, 1e-6f, rows, cols, dy, nullptr), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(gpu.data(), dy, gpu.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    for (size_t i = 0; i < cpu.size(); ++i) ASSERT_NEAR(gpu[i], cpu[i], 1e-4 * (1 + std::fabs(cpu[i]))) << i;
    EXPECT_EQ(gpu::RmsNorm(dx, dw, 1e-6f, rows, 0, dy, nullptr), cudaErrorInvalidValue);
    cudaFree(dx);
    cudaFree(dw);
    cudaFree(dy);
  }
}

}  // namespace
}  // namespace kaon::kernels
