#pragma once

#include <cstdint>

#include "kernels/common/kernel_status.h"

namespace kaon::kernels::cpu {

// SwiGLU on the fused gate/up projection: gate_up is [rows, 2 * cols] with the
// gate half first; out[r, c] = silu(gate[r, c]) * up[r, c].
KernelStatus SiluAndMul(const float* gate_up, int64_t rows, int64_t cols, float* out);

}  // namespace kaon::kernels::cpu
