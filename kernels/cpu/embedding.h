#pragma once

#include <cstdint>

#include "kernels/common/kernel_status.h"

namespace kaon::kernels::cpu {

// out[i, :] = table[ids[i] - vocab_begin, :] for ids inside this rank's vocab
// shard [vocab_begin, vocab_begin + shard_rows); rows of ids outside the shard
// are zero so that a sum over tensor-parallel ranks gives the full lookup.
KernelStatus EmbeddingLookup(const float* table, int64_t shard_rows, int64_t hidden,
                             int64_t vocab_begin, int64_t vocab_size, const int32_t* ids,
                             int64_t num_tokens, float* out);

// The same from a bf16 table (raw bits), widened to fp32 (exactly).
KernelStatus EmbeddingLookupBf16(const uint16_t* table, int64_t shard_rows, int64_t hidden, int64_t vocab_begin,
                                 int64_t vocab_size, const int32_t* ids, int64_t num_tokens, float* out);

}  // namespace kaon::kernels::cpu
