// CUDA embedding lookup. Twin of kernels/cpu/embedding.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/common/kernel_status.h"

namespace kaon::kernels::gpu {

// out[i, :] = table[ids[i] - vocab_begin, :] for ids inside this rank's shard
// [vocab_begin, vocab_begin + shard_rows); rows of ids outside the shard are
// zero so that a sum over tensor-parallel ranks gives the full lookup.
// All pointers are device pointers; T is float, __nv_bfloat16 or __half.
//
// The ids live on the device, so the host cannot range-check them without a
// sync. An id outside [0, vocab_size) never causes an out-of-bounds read: its
// row is written as zeros and, if `bad_id_flag` is not null, *bad_id_flag is
// set to 1 (the caller zeroes it beforehand and reads it when it next syncs).
template <typename T>
KernelStatus EmbeddingLookup(const T* table, int64_t shard_rows, int64_t hidden, int64_t vocab_begin,
                             int64_t vocab_size, const int32_t* ids, int64_t num_tokens, T* out,
                             int32_t* bad_id_flag, cudaStream_t stream);

}  // namespace kaon::kernels::gpu
