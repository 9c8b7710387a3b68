// The body fields /v1/completions and /v1/chat/completions share: the model
// name, sampling, stopping, streaming, and the final checks that need the
// prompt length (max_tokens default, SamplingParams::Validate, context).
#pragma once

#include <optional>

#include "server/api/field_reader.h"
#include "server/api/parsed_request.h"
#include "server/api/serving_context.h"

namespace kaon::api {

// An absent model means the served one; any other name is a 404.
void CheckModel(FieldReader& r, const ServingContext& ctx);

// Reads the model (checked first, so a wrong model is a 404 whatever else is
// wrong) and every shared field into out. Errors land in the reader.
// *max_tokens_given tells FinishCommonFields whether to apply the default.
void ReadCommonFields(FieldReader& r, const ServingContext& ctx, ParsedRequest& out, bool* max_tokens_given);

// With out.prompts filled: applies the max_tokens default (16 for
// completions, the rest of the context for chat), runs
// SamplingParams::Validate, checks token ids and the context length.
std::optional<ApiError> FinishCommonFields(const ServingContext& ctx, bool max_tokens_given, ParsedRequest& out);

// The request field a SamplingParams::Validate message is about: its messages
// start with the field's name ("top_p must be in ..."), which is the OpenAI
// parameter name too.
std::string ParamFromValidateMessage(std::string_view message);

}  // namespace kaon::api
