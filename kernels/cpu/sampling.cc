#include "kernels/cpu/sampling.h"

#include "kernels/common/philox.h"

namespace kaon::kernels::cpu {

// One implementation for host and device (kernels/common/philox.h).
void Philox4x32::Generate(uint64_t key, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                          uint32_t out[4]) {
  Philox4x32Generate(key, c0, c1, c2, c3, out);
}

float Philox4x32::Uniform(uint64_t key, uint64_t counter_hi, uint64_t counter_lo) {
  return Philox4x32Uniform(key, counter_hi, counter_lo);
}

int32_t Argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

}  // namespace kaon::kernels::cpu
