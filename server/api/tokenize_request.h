// POST /tokenize and /detokenize in vLLM's shapes, shared by the front ends:
//   {"prompt": "...", "add_special_tokens": true, "return_token_strs": false}
//   or {"messages": [...], chat fields..., "add_special_tokens": false}
//   → {"count", "max_model_len", "tokens", "token_strs"}
//   {"tokens": [ids]} → {"prompt": "..."}
// An optional "model" must name the served model (404 otherwise).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/api/api_error.h"
#include "server/api/serving_context.h"

namespace kaon::api {

// The typed operations both front ends run once they have read their wire
// format: a prompt's ids (and token strings when asked), and ids' text, with
// the rule that ids are inside the vocabulary.
struct TokenizeResult {
  std::vector<int32_t> ids;
  std::optional<std::vector<std::string>> token_strs;
};
TokenizeResult TokenizeText(const std::string& text, bool add_special_tokens, bool return_token_strs,
                            const ServingContext& ctx);
std::variant<std::string, ApiError> DetokenizeIds(const std::vector<int64_t>& ids, const ServingContext& ctx);

std::variant<nlohmann::ordered_json, ApiError> Tokenize(const nlohmann::ordered_json& body, const ServingContext& ctx);
std::variant<nlohmann::ordered_json, ApiError> Detokenize(const nlohmann::ordered_json& body,
                                                          const ServingContext& ctx);

}  // namespace kaon::api
