// A request's SamplingParams as a row of the backend's sampling table
// (server/backend/sampling.h): the one place the API's parameters meet the
// sampler's, so the model runner and the sampler tests map them alike.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "server/backend/sampling.h"
#include "server/engine/sampling_params.h"

namespace kaon {

// Appends the ids the row must not sample now: EOS (unless ignore_eos) and the
// stop ids while fewer than min_tokens have been generated.
void AppendBannedIds(const SamplingParams& params, int64_t num_output_tokens, std::span<const int32_t> eos_ids,
                     std::vector<int32_t>* banned);

// The row for the token at output position output_ids.size(). The spans (and
// params.logit_bias) must outlive the row.
SamplingRow MakeSamplingRow(const SamplingParams& params, uint64_t seed, int32_t sample_index,
                            std::span<const int32_t> prompt_ids, std::span<const int32_t> output_ids,
                            std::span<const int32_t> banned_ids);

}  // namespace kaon
