// CUDA rotary embedding, neox / rotate_half layout. Twin of kernels/cpu/rope.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/common/kernel_status.h"

namespace kaon::kernels::gpu {

// Rotates, in place, q [num_tokens, num_heads, head_dim] and k [num_tokens,
// num_kv_heads, head_dim], whose rows may sit inside a wider fused qkv buffer
// (row strides in elements). Within each head the pairs are (i, i + head_dim /
// 2): x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin, in fp32. cos_cache and
// sin_cache are fp32 [max_positions, head_dim / 2] built on the host
// (kernels/cpu/rope.h BuildRopeCache), with any llama3 / linear scaling already
// folded into the frequencies. All pointers are device pointers.
//
// Positions live on the device: a token whose position is outside
// [0, max_positions) is left unrotated rather than read out of bounds.
template <typename T>
KernelStatus ApplyRotaryNeox(T* q, int64_t q_row_stride, T* k, int64_t k_row_stride,
                             const int32_t* positions, int64_t num_tokens, int64_t num_heads,
                             int64_t num_kv_heads, int64_t head_dim, const float* cos_cache,
                             const float* sin_cache, int64_t max_positions, cudaStream_t stream);

}  // namespace kaon::kernels::gpu
