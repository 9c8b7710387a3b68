// A request as the engine core tracks it. Owned by the scheduler; touched
// only on the engine thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/runtime/sampling_params.h"

namespace kaon {

enum class RequestStatus { kWaiting, kRunning, kPreempted, kFinished };

enum class FinishReason { kNone, kStop, kLength, kAbort };

const char* FinishReasonName(FinishReason r);  // "stop", "length", "abort"

struct Request {
  int64_t id = 0;
  int32_t sample_index = 0;  // n > 1: which choice this child is
  int32_t priority = 0;      // lower is served first (priority policy)
  uint64_t arrival = 0;      // submission order, ties broken by it
  SamplingParams params;
  uint64_t seed = 0;         // resolved (random when the client gave none)

  std::vector<int32_t> tokens;  // prompt followed by outputs
  int64_t num_prompt_tokens = 0;
  int64_t num_computed_tokens = 0;
  int64_t num_cached_tokens = -1;  // prefix-cache hit at first admission (-1: not yet)
  int64_t num_preemptions = 0;

  RequestStatus status = RequestStatus::kWaiting;
  FinishReason finish_reason = FinishReason::kNone;
  std::optional<int32_t> stop_token;  // the EOS / stop id that finished it

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t num_output_tokens() const { return num_tokens() - num_prompt_tokens; }
  bool finished() const { return status == RequestStatus::kFinished; }
};

}  // namespace kaon
