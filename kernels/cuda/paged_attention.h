// CUDA paged attention for a mixed batch. Twin of kernels/cpu/paged_attention.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/common/kernel_status.h"
#include "kernels/cpu/paged_kv.h"

namespace kaon::kernels::gpu {

// The largest head_dim the kernel supports (each lane of a warp holds
// head_dim / 32 accumulators).
inline constexpr int64_t kPagedAttentionMaxHeadDim = 256;

// Causal attention for a mixed batch (prefill chunks and decodes) over the
// paged cache, which must already hold this step's K/V. Same contract as the
// CPU twin: query row i of sequence s sits at position seq_lens[s] - q_len + i
// and attends to positions [0, that position]; GQA: query head h reads kv head
// h / (num_heads / num_kv_heads). q is [num_tokens, num_heads, head_dim] with a
// row stride in elements (it may live in the fused qkv buffer); out is
// [num_tokens, num_heads * head_dim], contiguous. softmax(q.k * scale) in fp32
// (online, numerically stable), fp32 accumulation, one rounding to T.
//
// `meta`'s arrays are DEVICE pointers; its num_seqs and max_blocks_per_seq are
// host values. num_tokens (= query_start_loc[num_seqs], known to the host that
// built the metadata) is passed so the host never reads device memory. Rows at
// or past query_start_loc[num_seqs] (padding) are written as zeros. Metadata
// that breaks the contract on the device (q_len > seq_len, more blocks than a
// table row holds, a block id outside the cache) gives NaN rows, never an
// out-of-bounds read.
template <typename T>
KernelStatus PagedAttention(const T* q, int64_t q_row_stride, const T* k_cache, const T* v_cache,
                            const PagedKvShape& shape, const AttentionMetadata& meta, int64_t num_tokens,
                            int64_t num_heads, float scale, T* out, cudaStream_t stream);

}  // namespace kaon::kernels::gpu
