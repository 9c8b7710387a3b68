// A request as the engine core tracks it. Owned by the scheduler; touched
// only on the engine thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/backend/sampling.h"
#include "server/engine/sampling_params.h"

namespace kaon {

enum class RequestStatus { kWaiting, kRunning, kPreempted, kFinished };

enum class FinishReason { kNone, kStop, kLength, kAbort };

const char* FinishReasonName(FinishReason r);  // "stop", "length", "abort"

// Positions in [from, to) whose logits still give a prompt logprob, when
// `done` entries exist (entry j is for prompt token j + 1).
inline int64_t PromptLogitRows(const SamplingParams& params, int64_t done, int64_t num_prompt_tokens, int64_t from,
                               int64_t to) {
  if (params.prompt_logprobs < 0) return 0;
  const int64_t begin = std::max<int64_t>(from, done);
  const int64_t end = std::min<int64_t>(to, num_prompt_tokens - 1);
  return std::max<int64_t>(0, end - begin);
}

struct Request {
  int64_t id = 0;
  int32_t sample_index = 0;  // n > 1: which choice this child is
  int64_t first_sibling_id = 0;  // choice 0's id (its own for choice 0 and lone requests)
  int32_t priority = 0;      // lower is served first (priority policy)
  uint64_t arrival = 0;      // submission order, ties broken by it
  SamplingParams params;
  uint64_t seed = 0;         // resolved (random when the client gave none)

  std::vector<int32_t> tokens;  // prompt followed by outputs
  int64_t num_prompt_tokens = 0;
  int64_t num_computed_tokens = 0;
  int64_t num_cached_tokens = -1;  // prefix-cache hit at first admission (-1: not yet)
  int64_t num_preemptions = 0;
  // Prompt logprobs computed so far: entry j is for prompt token j + 1 (the
  // first prompt token has none). Kept across preemption.
  std::vector<SampleResult> prompt_logprobs;
  bool prompt_logprobs_sent = false;

  // Positions in [from, to) whose logits still give a prompt logprob.
  int64_t PromptLogitRows(int64_t from, int64_t to) const {
    return kaon::PromptLogitRows(params, static_cast<int64_t>(prompt_logprobs.size()), num_prompt_tokens, from, to);
  }

  // Scheduler bookkeeping of what the model runner holds: whether it has
  // seen the request since its (re)admission, and how many of its block ids
  // it was sent.
  bool in_runner = false;
  int64_t num_blocks_sent = 0;

  RequestStatus status = RequestStatus::kWaiting;
  FinishReason finish_reason = FinishReason::kNone;
  std::optional<int32_t> stop_token;  // the EOS / stop id that finished it

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t num_output_tokens() const { return num_tokens() - num_prompt_tokens; }
  bool finished() const { return status == RequestStatus::kFinished; }
};

}  // namespace kaon
