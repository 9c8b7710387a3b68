#include "kernels/cpu/activation.h"

#include <cmath>

namespace kaon::kernels::cpu {

KernelStatus SiluAndMul(const float* gate_up, int64_t rows, int64_t cols, float* out) {
  KAON_KERNEL_REQUIRE(gate_up && out, "silu_and_mul: null pointer");
  KAON_KERNEL_REQUIRE(rows >= 0 && cols > 0, "silu_and_mul: bad shape");
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gate_up + r * 2 * cols;
    const float* u = g + cols;
    float* o = out + r * cols;
    for (int64_t c = 0; c < cols; ++c) o[c] = g[c] / (1.0f + std::exp(-g[c])) * u[c];
  }
  return KernelStatus::Ok();
}

}  // namespace kaon::kernels::cpu
