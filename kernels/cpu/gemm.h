// fp32 GEMM for the CPU backend's linear layers: y = x · wᵀ (+ bias), with
// w [n, k] row-major as checkpoints store it (no packing, so a tied
// embedding table is also its LM head).
//
// Batch invariance: every path sums each dot product over k in one fixed
// order (per path: lane l of a vector accumulator takes p ≡ l mod lanes in
// increasing p, one fused multiply-add at a time, then a fixed halving tree
// over the lanes, then + bias), whatever m is and whichever tile the dot
// falls in. So a row of y is bitwise the same computed alone or in any batch,
// and a sequence's tokens do not depend on who it was batched with.
#pragma once

#include <cstdint>

#include "kernels/cpu/cpu_isa.h"

namespace kaon::kernels::cpu {

// y[i * ldy + j] = Σ_p x[i * ldx + p] · w[j * k + p] (+ bias[j]) for i < m,
// j < n. bias may be null. Single-threaded: callers split n.
void GemmF32(CpuIsa isa, const float* x, int64_t ldx, int64_t m, const float* w, int64_t n, int64_t k,
             const float* bias, float* y, int64_t ldy);

// The same with bf16 weights (the raw bits, round-to-nearest-even from fp32)
// and fp32 accumulation. kAvx512Bf16 rounds x to bf16 and uses vdpbf16ps
// (llama.cpp's choice); every other path widens the weights to fp32 in
// registers and keeps x in fp32 (exact products).
void GemmBf16(CpuIsa isa, const float* x, int64_t ldx, int64_t m, const uint16_t* w, int64_t n, int64_t k,
              const float* bias, float* y, int64_t ldy);

// kAvx512Bf16 only, in two parts so x is rounded once per product rather
// than once per column tile: RoundToBf16 (count elements, nearest even), then
// GemmBf16PreRounded over the rounded copy. Bitwise what GemmBf16 gives on
// that path. False / no-op on other paths (callers use GemmBf16 there).
bool RoundToBf16(CpuIsa isa, const float* x, int64_t count, uint16_t* out);
void GemmBf16PreRounded(const uint16_t* x, int64_t ldx, int64_t m, const uint16_t* w, int64_t n, int64_t k,
                        const float* bias, float* y, int64_t ldy);

}  // namespace kaon::kernels::cpu
