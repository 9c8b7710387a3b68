#include "server/engine/sampling_rows.h"

namespace kaon {

void AppendBannedIds(const SamplingParams& params, int64_t num_output_tokens, std::span<const int32_t> eos_ids,
                     std::vector<int32_t>* banned) {
  if (num_output_tokens >= params.min_tokens) return;
  if (!params.ignore_eos) banned->insert(banned->end(), eos_ids.begin(), eos_ids.end());
  banned->insert(banned->end(), params.stop_token_ids.begin(), params.stop_token_ids.end());
}

SamplingRow MakeSamplingRow(const SamplingParams& params, uint64_t seed, int32_t sample_index,
                            std::span<const int32_t> prompt_ids, std::span<const int32_t> output_ids,
                            std::span<const int32_t> banned_ids) {
  SamplingRow row;
  row.temperature = params.temperature;
  row.top_k = params.top_k;
  row.top_p = params.top_p;
  row.min_p = params.min_p;
  row.repetition_penalty = params.repetition_penalty;
  row.frequency_penalty = params.frequency_penalty;
  row.presence_penalty = params.presence_penalty;
  row.seed = seed;
  row.sample_index = sample_index;
  row.output_position = static_cast<int64_t>(output_ids.size());
  row.logprobs = params.logprobs;
  row.logit_bias = params.logit_bias;
  row.banned_ids = banned_ids;
  row.prompt_ids = prompt_ids;
  row.output_ids = output_ids;
  return row;
}

}  // namespace kaon
