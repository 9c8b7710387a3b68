// The CPU twin of the device sampler (kernels/cuda/sample_rows.h): the same
// algorithm on the same packed table, serially, with the same arithmetic
// (kernels/common/sampling_math.h), so the kernel and the twin return
// identical tokens and logprobs. It is what a CUDA test compares the kernel
// against; the semantics are server/backend/sampling.h's, and tests check
// the twin against the reference CpuSampler.
//
// Per row: raw logprobs (when asked, computed after the draw from the raw
// logits) → ids >= sampleable_vocab masked → allowed mask → banned ids →
// logit_bias → repetition → frequency, presence → greedy argmax, or
// temperature → min_p → top_k → top_p → inverse-CDF draw. top_k, top_p and
// the draw are one primitive, "the first token, best first, where the
// cumulative count or fixed-point mass reaches a target", found by a radix
// select over rank keys (4 digits of 8 bits) and then by id among equal keys.
// Masses are integers, so no summation order can change a decision.
#pragma once

#include <cstdint>

#include "kernels/common/kernel_status.h"
#include "kernels/common/sampling_table.h"

namespace kaon::kernels::cpu {

// logits: [rows, vocab] fp32; work: [rows, vocab] scratch (the processed
// logits). table.num_rows must equal rows; every row's logprobs must be at
// most out.top_stride. Ids >= sampleable_vocab (a padded LM head) are never
// drawn. vocab must be below 2^20 (the fixed-point masses).
KernelStatus SampleRows(const float* logits, int64_t rows, int64_t vocab, int64_t sampleable_vocab,
                        const SamplingTable& table, float* work, SampleOutputs out);

// log_softmax of one raw row (all vocab ids), for prompt logprobs: `token`'s
// logprob, and the top k (top_ids/top_logprobs hold k entries; those past
// min(k, vocab) get -1 and 0), highest first, ties lower id first.
KernelStatus LogprobRow(const float* logits_row, int64_t vocab, int32_t token, int32_t k, float* token_logprob,
                        int32_t* top_ids, float* top_logprobs);

}  // namespace kaon::kernels::cpu
