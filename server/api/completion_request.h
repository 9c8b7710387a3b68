// /v1/completions bodies: the prompt forms, echo, logprobs and suffix on top
// of the shared fields.
#pragma once

#include "nlohmann/json.hpp"
#include "server/api/parsed_request.h"
#include "server/api/serving_context.h"

namespace kaon::api {

// prompt: a string, a list of strings, a list of token ids, or a list of such
// lists. Strings are tokenized with the tokenizer's special tokens (BOS), as
// vLLM does for completions. Needs ctx.tokenizer.
ParseResult ParseCompletionRequest(const nlohmann::ordered_json& body, const ServingContext& ctx);

}  // namespace kaon::api
