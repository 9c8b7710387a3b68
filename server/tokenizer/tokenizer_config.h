// The parts of tokenizer_config.json that the server uses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kaon {

struct TokenizerConfig {
  std::optional<std::string> bos_token, eos_token, pad_token, unk_token;
  std::optional<bool> add_bos_token, add_eos_token;
  std::optional<std::string> chat_template;
  std::optional<std::string> tokenizer_class;
  // transformers writes 1e30 for "no limit"; such values clamp to INT64_MAX.
  int64_t model_max_length = INT64_MAX;
  bool clean_up_tokenization_spaces = false;
};

// Special tokens may be strings or AddedToken objects ({"content": ...}).
// Errors name `origin` and the field.
absl::StatusOr<TokenizerConfig> ParseTokenizerConfig(const nlohmann::ordered_json& json,
                                                     const std::string& origin);

}  // namespace kaon
