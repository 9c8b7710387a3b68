// Plain-loop reference GEMM: the CPU twin that the CUDA GEMMs (and the
// SIMD paths of kernels/cpu/gemm.h) are compared with. Not for production use.
#pragma once

#include <cstdint>

namespace kaon::kernels::cpu {

// y[M, N] = x[M, K] * w[N, K]^T (+ bias[N]), accumulated in double.
inline void LinearRef(const float* x, const float* w, const float* bias, int64_t m, int64_t n,
                      int64_t k, float* y) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = bias ? bias[j] : 0.0;
      for (int64_t p = 0; p < k; ++p) acc += static_cast<double>(x[i * k + p]) * w[j * k + p];
      y[i * n + j] = static_cast<float>(acc);
    }
  }
}

}  // namespace kaon::kernels::cpu
