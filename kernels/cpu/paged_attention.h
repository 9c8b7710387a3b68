#pragma once

#include <cstdint>

#include "kernels/common/kernel_status.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/paged_kv.h"
#include "kernels/cpu/thread_pool.h"

namespace kaon::kernels::cpu {

// Causal attention for a mixed batch (prefill chunks and decodes) over the
// paged cache, which must already hold this step's K/V. Query row i of
// sequence s sits at position seq_lens[s] - q_len + i and attends to positions
// [0, that position]. GQA: query head h reads kv head h / (num_heads /
// num_kv_heads). q is [tokens, num_heads, head_dim] with a row stride (it may
// live in a fused qkv buffer); out is [tokens, num_heads * head_dim].
// One pass per (token, KV head) with an online softmax, so no scratch of
// the context's length. `isa` picks the SIMD path (cpu_isa.h; the caller checked the CPU has it); the scalar one is
// the reference the CUDA kernel is compared with.
KernelStatus PagedAttention(const float* q, int64_t q_row_stride, const float* k_cache,
                            const float* v_cache, const PagedKvShape& shape,
                            const AttentionMetadata& meta, int64_t num_heads, float scale,
                            float* out, ThreadPool* pool, CpuIsa isa = CpuIsa::kScalar);

}  // namespace kaon::kernels::cpu
