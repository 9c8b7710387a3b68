// CUDA SiLU-and-multiply (SwiGLU). Twin of kernels/cpu/activation.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/common/kernel_status.h"

namespace kaon::kernels::gpu {

// gate_up is [rows, 2 * cols] with the gate half first (the fused gate/up
// projection); out[r, c] = silu(gate[r, c]) * up[r, c], computed in fp32.
// Device pointers; out must not overlap gate_up.
template <typename T>
KernelStatus SiluAndMul(const T* gate_up, int64_t rows, int64_t cols, T* out, cudaStream_t stream);

}  // namespace kaon::kernels::gpu
