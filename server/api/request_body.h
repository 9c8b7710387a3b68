// A request body read as JSON within RequestLimits: the one place that turns
// bytes from a client into a JSON object, for every HTTP route.
#pragma once

#include <string_view>
#include <variant>

#include "nlohmann/json.hpp"
#include "server/api/api_error.h"
#include "server/api/request_limits.h"

namespace kaon::api {

// The body as a JSON object, or a 400 naming "body": not JSON (or not
// UTF-8), nested deeper than limits.json.max_depth, more than
// limits.json.max_elements values, or not an object.
std::variant<nlohmann::ordered_json, ApiError> ParseRequestBody(std::string_view body, const RequestLimits& limits);

// The same bounds for JSON carried as text inside a request (gRPC's tools and
// chat_template_kwargs): a 400 naming `param` on failure.
std::variant<nlohmann::ordered_json, ApiError> ParseJsonText(std::string_view text, const RequestLimits& limits,
                                                             const std::string& param);

}  // namespace kaon::api
