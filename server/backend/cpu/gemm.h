// y[m, out] = x[m, in] · wᵀ (+ bias) in fp32 on OpenBLAS, split by output
// columns over the CPU backend's pool. OpenBLAS itself runs single-threaded
// (UseSingleThreadedBlas): its threads busy-wait between calls and would
// fight the pool for cores.
#pragma once

#include <cstdint>

#include "kernels/cpu/thread_pool.h"

namespace kaon::cpu {

// w is [out, in] row-major, as checkpoints store it; bias [out] or null.
void Gemm(const float* x, const float* w, const float* bias, int64_t m, int64_t in, int64_t out, float* y,
          kernels::cpu::ThreadPool* pool);

// Call once at start-up, before the first Gemm.
void UseSingleThreadedBlas();

}  // namespace kaon::cpu
