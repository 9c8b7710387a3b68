#pragma once

#include <cstdint>

#include "kernels/common/kernel_status.h"

namespace kaon::kernels::cpu {

// Fills cos/sin tables [max_positions, rot_dim / 2] from the (already scaled)
// inverse frequencies. Computed in double so the table is exact to fp32.
void BuildRopeCache(const double* inv_freq, int64_t half_dim, int64_t max_positions,
                    float* cos_out, float* sin_out);

// Rotary embedding, neox / rotate_half layout (Hugging Face Llama, Qwen,
// Mistral): within each head the pairs are (i, i + head_dim / 2). Rotates q
// [tokens, num_heads, head_dim] and k [tokens, num_kv_heads, head_dim] in place;
// q and k may be rows of a wider fused qkv buffer (row strides in floats).
KernelStatus ApplyRotaryNeox(float* q, int64_t q_row_stride, float* k, int64_t k_row_stride,
                             const int32_t* positions, int64_t num_tokens, int64_t num_heads,
                             int64_t num_kv_heads, int64_t head_dim, const float* cos_cache,
                             const float* sin_cache, int64_t max_positions);

}  // namespace kaon::kernels::cpu
