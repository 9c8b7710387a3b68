// Chat messages as the template expects them: content flattened to a string
// and assistant tool-call arguments parsed from JSON strings into objects
// (templates such as Qwen's run `arguments | tojson`, which would otherwise
// quote the string a second time; vLLM does the same).
#pragma once

#include <optional>
#include <variant>

#include "nlohmann/json.hpp"
#include "server/api/api_error.h"

namespace kaon::api {

// Checks roles and content shapes and returns the messages rewritten for the
// template, or a 400 with param "messages".
std::variant<nlohmann::ordered_json, ApiError> NormalizeChatMessages(const nlohmann::ordered_json& messages);

}  // namespace kaon::api
