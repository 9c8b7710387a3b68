// What a request's consumer receives: one event per engine step that
// produced tokens for it (or merged steps, when the consumer is slow).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "server/engine/request.h"
#include "server/backend/sampling.h"

namespace kaon {

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens served from the prefix cache
};

struct RequestOutput {
  int32_t index = 0;                 // choice index (n > 1)
  std::vector<int32_t> token_ids;    // new ids since the previous event for this choice
  std::string text;                  // new text (complete UTF-8, stop strings applied)
  std::vector<SampleResult> logprobs;  // one per new id when logprobs were requested
  // With prompt_logprobs, on the first event: one per prompt token after the
  // first (which has none), each with its top alternatives.
  std::vector<SampleResult> prompt_logprobs;
  FinishReason finish_reason = FinishReason::kNone;
  // What ended it with "stop": the token id or the stop string.
  std::variant<std::monostate, int32_t, std::string> stop_reason;
  std::optional<Usage> usage;        // on the finishing event
  std::string error;                 // a step failed for this request (server error)
  bool finished() const { return finish_reason != FinishReason::kNone || !error.empty(); }
};

}  // namespace kaon
