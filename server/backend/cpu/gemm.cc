#include "server/backend/cpu/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>

namespace kaon::cpu {

void UseSingleThreadedBlas() { openblas_set_num_threads(1); }

namespace {

// y[:, n0:n1] for output columns [n0, n1); y keeps its full row stride.
void GemmColumns(const float* x, const float* w, const float* bias, int64_t m, int64_t in, int64_t out, int64_t n0,
                 int64_t n1, float* y) {
  const int n = static_cast<int>(n1 - n0);
  const float beta = bias ? 1.0f : 0.0f;
  if (bias) {
    for (int64_t i = 0; i < m; ++i) std::memcpy(y + i * out + n0, bias + n0, sizeof(float) * n);
  }
  if (m == 1) {
    // Decode steps of one sequence: a matrix-vector product skips GEMM's
    // packing of W, which costs more than the product at this size.
    cblas_sgemv(CblasRowMajor, CblasNoTrans, n, static_cast<int>(in), 1.0f, w + n0 * in, static_cast<int>(in), x, 1,
                beta, y + n0, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), n, static_cast<int>(in), 1.0f, x,
              static_cast<int>(in), w + n0 * in, static_cast<int>(in), beta, y + n0, static_cast<int>(out));
}

}  // namespace

void Gemm(const float* x, const float* w, const float* bias, int64_t m, int64_t in, int64_t out, float* y,
          kernels::cpu::ThreadPool* pool) {
  if (m == 0) return;
  // Below this many multiply-adds a thread hand-off costs more than it saves.
  constexpr int64_t kMinParallelWork = int64_t{1} << 18;
  constexpr int64_t kColumnGrain = 16;  // keeps each thread's slice SIMD-friendly
  const int64_t chunks = (out + kColumnGrain - 1) / kColumnGrain;
  if (pool == nullptr || pool->num_threads() == 1 || m * out * in < kMinParallelWork || chunks < 2) {
    GemmColumns(x, w, bias, m, in, out, 0, out, y);
    return;
  }
  pool->ParallelFor(chunks, [&](int64_t c0, int64_t c1, int) {
    GemmColumns(x, w, bias, m, in, out, c0 * kColumnGrain, std::min(out, c1 * kColumnGrain), y);
  });
}

}  // namespace kaon::cpu
