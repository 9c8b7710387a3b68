// Every rule a generation request must meet, each written once, with the one
// message a client sees for it. The front ends only read their wire format
// (JSON bodies in server/api, kaon.v1 messages in server/grpc, flags in
// server/cli) into typed values and then call these; the engine and the
// scheduler take the validated request and only assert what these ensure.
//
// Messages start with the field's name ("top_p must be in (0, 1], got 0"),
// the OpenAI parameter name too, which the front ends turn into the error's
// param (ParamFromRuleMessage).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/api/request_limits.h"
#include "server/engine/sampling_params.h"
#include "server/loading/model_config.h"

namespace kaon::api {

// What the model bounds: ids must be inside the vocabulary, prompt plus
// completion inside the context.
struct ModelBounds {
  int64_t vocab_size = 0;
  int64_t max_model_len = 0;
};

// Ranges of every sampling field, the stop, stop_token_ids and logit_bias
// limits, and ids inside the vocabulary. `logprobs_field` names the count of
// alternatives: "logprobs" (completions, gRPC) or "top_logprobs" (chat).
// NaN fails every range check.
absl::Status CheckSamplingParams(const SamplingParams& p, int64_t vocab_size, const RequestLimits& limits,
                                 const std::string& logprobs_field = "logprobs");

// A non-empty prompt of ids inside the vocabulary. InvalidArgument; the
// message does not name a field (the caller's prompt field is the param).
absl::Status CheckPromptIds(const std::vector<int32_t>& ids, int64_t vocab_size);

// prompt_len + max_tokens within the context, in vLLM's words
// (code "context_length_exceeded" over HTTP). No field name either.
absl::Status CheckContextLength(int64_t prompt_len, int64_t max_tokens, int64_t max_model_len);

// The three above, for callers with a bare engine request (`kaon generate`,
// `kaon throughput`): prompt first, then context, then sampling.
absl::Status CheckGenerationRequest(const std::vector<int32_t>& prompt_ids, const SamplingParams& p,
                                    const ModelBounds& bounds, const RequestLimits& limits);

// generation_config.json's defaults over vLLM's must be sampling a request
// could send, or every request that leaves those fields unset would be
// refused: checked once at start-up. The message names MODEL_DIR's file.
absl::Status CheckGenerationDefaults(const GenerationDefaults& defaults, int64_t vocab_size,
                                     const std::string& model_dir);

// The field a rule message is about: its leading identifier.
std::string ParamFromRuleMessage(absl::string_view message);

}  // namespace kaon::api
