// Chat messages as the template expects them: content flattened to a string
// and assistant tool-call arguments parsed from JSON strings into objects
// (templates such as Qwen's run `arguments | tojson`, which would otherwise
// quote the string a second time; vLLM does the same).
#pragma once

#include <optional>
#include <variant>

#include "nlohmann/json.hpp"
#include "server/api/api_error.h"
#include "server/api/request_limits.h"

namespace kaon::api {

// Checks roles, content shapes and the message count, and returns the
// messages rewritten for the template, or a 400 with param "messages". A null
// or absent content (an assistant turn that only calls tools, as the Vercel AI
// SDK sends it) becomes "", as vLLM renders it, so every template can treat
// content as a string. Tool-call arguments are parsed within limits.json.
// The message-count limit's one message (also checked by gRPC before it
// converts a message).
std::optional<ApiError> CheckMessageCount(size_t messages, const RequestLimits& limits);

std::variant<nlohmann::ordered_json, ApiError> NormalizeChatMessages(const nlohmann::ordered_json& messages,
                                                                     const RequestLimits& limits);

}  // namespace kaon::api
