// The device sampler: a step's logits rows → tokens (and raw logprobs) on the
// GPU, with the semantics of server/backend/sampling.h. Twin of
// kernels/cpu/sample_rows, which runs the same algorithm with the same
// arithmetic (kernels/common/sampling_math.h) and returns identical outputs;
// see that header for the algorithm. Nothing leaves the device but `out`.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/common/kernel_status.h"
#include "kernels/common/sampling_table.h"

namespace kaon::kernels::gpu {

// The most top logprobs a row may ask for (the gather sorts them in shared
// memory); the API's cap (kMaxSampleTopLogprobs) is far below it.
inline constexpr int32_t kMaxSampleRowsTopLogprobs = 256;

// Device scratch SampleRows needs for up to max_rows rows of `vocab`: each
// row's processed logits (fp32) and its distinct-id bitmap. Allocate once.
size_t SampleRowsScratchBytes(int64_t max_rows, int64_t vocab);

// logits: [rows, vocab] device memory of T (float, __nv_bfloat16, __half);
// table: the packed table's view onto its device copy (num_rows == rows);
// scratch: SampleRowsScratchBytes(rows, vocab) bytes or more; out: device
// arrays, top_stride in [0, kMaxSampleRowsTopLogprobs] and at least every
// row's logprobs (larger requests are clipped to it). Ids >= sampleable_vocab
// are never drawn; vocab must be below 2^20. One block of 1024 threads per row.
template <typename T>
KernelStatus SampleRows(const T* logits, int64_t rows, int64_t vocab, int64_t sampleable_vocab,
                        const SamplingTable& table, void* scratch, SampleOutputs out, cudaStream_t stream);

// Prompt logprobs of one raw row (all vocab ids): `token`'s logprob, and the
// top k (k entries at top_ids/top_logprobs; those past min(k, vocab) get -1
// and 0), highest first, ties lower id first. All pointers are device
// memory; scratch is unused (may be null) and kept for a later version.
template <typename T>
KernelStatus LogprobRow(const T* logits_row, int64_t vocab, int32_t token, int32_t k, void* scratch,
                        float* token_logprob, int32_t* top_ids, float* top_logprobs, cudaStream_t stream);

}  // namespace kaon::kernels::gpu
