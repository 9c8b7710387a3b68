#include "server/backend/cpu/gemm.h"

#include <algorithm>

#include "kernels/cpu/gemm.h"

namespace kaon::cpu {
namespace {

void Kernel(kernels::cpu::CpuIsa isa, const float* x, int64_t m, const float* w, int64_t n, int64_t k,
            const float* bias, float* y, int64_t ldy) {
  kernels::cpu::GemmF32(isa, x, k, m, w, n, k, bias, y, ldy);
}

void Kernel(kernels::cpu::CpuIsa isa, const float* x, int64_t m, const uint16_t* w, int64_t n, int64_t k,
            const float* bias, float* y, int64_t ldy) {
  kernels::cpu::GemmBf16(isa, x, k, m, w, n, k, bias, y, ldy);
}

void Kernel(kernels::cpu::CpuIsa, const uint16_t* x, int64_t m, const uint16_t* w, int64_t n, int64_t k,
            const float* bias, float* y, int64_t ldy) {
  kernels::cpu::GemmBf16PreRounded(x, k, m, w, n, k, bias, y, ldy);
}

template <typename X, typename W>
void Split(kernels::cpu::CpuIsa isa, const X* x, const W* w, const float* bias, int64_t m, int64_t in,
           int64_t out, float* y, kernels::cpu::ThreadPool* pool) {
  if (m == 0) return;
  // Below this many multiply-adds a thread hand-off costs more than it saves.
  constexpr int64_t kMinParallelWork = int64_t{1} << 16;
  // A multiple of every path's column tile (4, 6, 8), so only the last
  // slice has an edge tile.
  constexpr int64_t kColumnGrain = 48;
  const int64_t chunks = (out + kColumnGrain - 1) / kColumnGrain;
  if (pool == nullptr || pool->num_threads() == 1 || m * out * in < kMinParallelWork || chunks < 2) {
    Kernel(isa, x, m, w, out, in, bias, y, out);
    return;
  }
  pool->ParallelFor(chunks, [&](int64_t c0, int64_t c1, int) {
    const int64_t n0 = c0 * kColumnGrain, n1 = std::min(out, c1 * kColumnGrain);
    Kernel(isa, x, m, w + n0 * in, n1 - n0, in, bias ? bias + n0 : nullptr, y + n0, out);
  });
}

}  // namespace

void Gemm(kernels::cpu::CpuIsa isa, const float* x, const float* w, const float* bias, int64_t m, int64_t in,
          int64_t out, float* y, kernels::cpu::ThreadPool* pool) {
  Split(isa, x, w, bias, m, in, out, y, pool);
}

void Gemm(kernels::cpu::CpuIsa isa, const float* x, const uint16_t* w, const float* bias, int64_t m, int64_t in,
          int64_t out, float* y, kernels::cpu::ThreadPool* pool, uint16_t* x_bf16, int64_t x_bf16_capacity) {
  if (isa == kernels::cpu::CpuIsa::kAvx512Bf16 && x_bf16 != nullptr && m * in <= x_bf16_capacity) {
    kernels::cpu::ParallelFor(m * in >= (int64_t{1} << 16) ? pool : nullptr, m, [&](int64_t r0, int64_t r1, int) {
      kernels::cpu::RoundToBf16(isa, x + r0 * in, (r1 - r0) * in, x_bf16 + r0 * in);
    });
    Split(isa, static_cast<const uint16_t*>(x_bf16), w, bias, m, in, out, y, pool);
    return;
  }
  Split(isa, x, w, bias, m, in, out, y, pool);
}

}  // namespace kaon::cpu
