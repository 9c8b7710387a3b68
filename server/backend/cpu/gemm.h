// y[m, out] = x[m, in] · wᵀ (+ bias) with fp32 or bf16 weights on kaon's own
// kernels (kernels/cpu/gemm.h), split by output columns over the CPU
// backend's pool. The split never changes a dot product's summation order,
// so a row's result does not depend on the batch or the thread count.
#pragma once

#include <cstdint>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/thread_pool.h"

namespace kaon::cpu {

// w is [out, in] row-major, as checkpoints store it; bias [out] or null.
void Gemm(kernels::cpu::CpuIsa isa, const float* x, const float* w, const float* bias, int64_t m, int64_t in,
          int64_t out, float* y, kernels::cpu::ThreadPool* pool);
// w holds bf16 bits. On the avx512bf16 path, with `x_bf16` room for m × in
// elements, x is rounded into it once (split over the pool) and the GEMM
// reads the copy; otherwise each tile rounds as it loads (same bits).
void Gemm(kernels::cpu::CpuIsa isa, const float* x, const uint16_t* w, const float* bias, int64_t m, int64_t in,
          int64_t out, float* y, kernels::cpu::ThreadPool* pool, uint16_t* x_bf16 = nullptr,
          int64_t x_bf16_capacity = 0);

}  // namespace kaon::cpu
