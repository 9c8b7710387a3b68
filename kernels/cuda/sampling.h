// CUDA greedy sampling: argmax per row. Twin of kernels/cpu/sampling's Argmax.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/common/kernel_status.h"

namespace kaon::kernels::gpu {

// out_ids[r] = the index of the largest of logits[r, 0 .. sampleable_vocab),
// logits being [rows, vocab] (device pointers). Ids at or past
// sampleable_vocab (padding rows of the lm_head) are never chosen. The lowest
// id wins ties, as in the CPU twin. NaN logits are ignored (a row of only NaN
// gives id 0); the CPU twin only agrees on NaN-free rows.
template <typename T>
KernelStatus ArgmaxRows(const T* logits, int64_t rows, int64_t vocab, int64_t sampleable_vocab,
                        int32_t* out_ids, cudaStream_t stream);

}  // namespace kaon::kernels::gpu
