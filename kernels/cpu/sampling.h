#pragma once

#include <cstdint>

namespace kaon::kernels::cpu {

// Philox4x32-10 (Salmon et al., SC'11): a counter-based generator, so a draw
// depends only on (key, counter) — the same seeded request gives the same
// tokens alone, batched, after preemption, and on any backend.
struct Philox4x32 {
  static void Generate(uint64_t key, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                       uint32_t out[4]);
  // A uniform float in [0, 1) from the first output word (24 random bits).
  static float Uniform(uint64_t key, uint64_t counter_hi, uint64_t counter_lo);
};

// Index of the largest value; the lowest index wins ties (as the references do).
int32_t Argmax(const float* logits, int64_t n);

}  // namespace kaon::kernels::cpu
