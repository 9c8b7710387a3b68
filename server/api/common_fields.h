// The body fields /v1/completions and /v1/chat/completions share: the model
// name, sampling, stopping, streaming, and the final checks that need the
// prompt length (max_tokens default, SamplingParams::Validate, context).
#pragma once

#include <optional>
#include <string>

#include "server/api/field_reader.h"
#include "server/api/parsed_request.h"
#include "server/api/serving_context.h"

namespace kaon::api {

// An absent model means the served one; any other name is a 404.
void CheckModel(FieldReader& r, const ServingContext& ctx);
// The 404 for a model name that is not the served one (the rule CheckModel
// and gRPC share).
std::optional<ApiError> CheckModelName(const std::string& name, const ServingContext& ctx);

// Reads the model (checked first, so a wrong model is a 404 whatever else is
// wrong) and every shared field into out. Errors land in the reader.
// *max_tokens_given tells FinishCommonFields whether to apply the default.
void ReadCommonFields(FieldReader& r, const ServingContext& ctx, ParsedRequest& out, bool* max_tokens_given);

// What a front end calls the fields whose names differ between APIs.
struct FieldNames {
  std::string prompt = "prompt";      // chat: "messages"; gRPC: "text", "token_ids"
  std::string logprobs = "logprobs";  // chat: "top_logprobs"
  // max_tokens' default: 16 (completions), or the rest of the context (chat).
  bool chat_default_max_tokens = false;
};

// With out.prompts filled: applies the max_tokens default, then every rule
// of request_rules.h (prompt ids, context length, sampling) to the typed
// request, so HTTP and gRPC refuse a request with the same message.
std::optional<ApiError> FinishCommonFields(const ServingContext& ctx, bool max_tokens_given, ParsedRequest& out,
                                           const FieldNames& names);
// HTTP's names for out.kind.
std::optional<ApiError> FinishCommonFields(const ServingContext& ctx, bool max_tokens_given, ParsedRequest& out);

}  // namespace kaon::api
