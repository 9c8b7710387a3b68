// POST /tokenize and /detokenize in vLLM's shapes, shared by the front ends:
//   {"prompt": "...", "add_special_tokens": true, "return_token_strs": false}
//   or {"messages": [...], chat fields..., "add_special_tokens": false}
//   → {"count", "max_model_len", "tokens", "token_strs"}
//   {"tokens": [ids]} → {"prompt": "..."}
// An optional "model" must name the served model (404 otherwise).
#pragma once

#include <variant>

#include "nlohmann/json.hpp"
#include "server/api/api_error.h"
#include "server/api/serving_context.h"

namespace kaon::api {

std::variant<nlohmann::ordered_json, ApiError> Tokenize(const nlohmann::ordered_json& body, const ServingContext& ctx);
std::variant<nlohmann::ordered_json, ApiError> Detokenize(const nlohmann::ordered_json& body,
                                                          const ServingContext& ctx);

}  // namespace kaon::api
