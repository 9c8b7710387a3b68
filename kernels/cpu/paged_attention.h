#pragma once

#include <cstdint>

#include "kernels/common/kernel_status.h"
#include "kernels/cpu/paged_kv.h"
#include "kernels/cpu/thread_pool.h"

namespace kaon::kernels::cpu {

// Causal attention for a mixed batch (prefill chunks and decodes) over the
// paged cache, which must already hold this step's K/V. Query row i of
// sequence s sits at position seq_lens[s] - q_len + i and attends to positions
// [0, that position]. GQA: query head h reads kv head h / (num_heads /
// num_kv_heads). q is [tokens, num_heads, head_dim] with a row stride (it may
// live in a fused qkv buffer); out is [tokens, num_heads * head_dim].
// `scratch` holds at least num_threads * max_seq_len floats.
KernelStatus PagedAttention(const float* q, int64_t q_row_stride, const float* k_cache,
                            const float* v_cache, const PagedKvShape& shape,
                            const AttentionMetadata& meta, int64_t num_heads, float scale,
                            float* out, float* scratch, ThreadPool* pool);

}  // namespace kaon::kernels::cpu
