#include "server/engine/sampling_params.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace kaon {
namespace {

absl::Status Invalid(const auto&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); }

}  // namespace

absl::Status SamplingParams::Validate(int64_t vocab_size) const {
  // Comparisons are written so that NaN fails them.
  if (n < 1 || n > kMaxChoices) return Invalid("n must be in [1, ", kMaxChoices, "], got ", n);
  if (best_of != 0 && (best_of < n || best_of > kMaxChoices)) {
    return Invalid("best_of must be in [n, ", kMaxChoices, "] (n = ", n, "), got ", best_of);
  }
  if (!(temperature >= 0.0f) || !std::isfinite(temperature)) {
    return Invalid("temperature must be a finite number >= 0, got ", temperature);
  }
  if (top_k < -1) return Invalid("top_k must be -1 (disabled), 0 (disabled) or positive, got ", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f)) return Invalid("top_p must be in (0, 1], got ", top_p);
  if (!(min_p >= 0.0f && min_p <= 1.0f)) return Invalid("min_p must be in [0, 1], got ", min_p);
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f)) {
    return Invalid("presence_penalty must be in [-2, 2], got ", presence_penalty);
  }
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f)) {
    return Invalid("frequency_penalty must be in [-2, 2], got ", frequency_penalty);
  }
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty)) {
    return Invalid("repetition_penalty must be a finite number > 0, got ", repetition_penalty);
  }
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0 || id >= vocab_size) {
      return Invalid("logit_bias token id ", id, " is outside the vocabulary [0, ", vocab_size, ")");
    }
    // An infinite bias would turn a masked (-inf) logit into NaN.
    if (!std::isfinite(bias)) return Invalid("logit_bias for token ", id, " must be finite, got ", bias);
  }
  if (logprobs < -1 || logprobs > kMaxLogprobs) {
    return Invalid("logprobs must be in [0, ", kMaxLogprobs, "] (or -1 for none), got ", logprobs);
  }
  if (prompt_logprobs < -1 || prompt_logprobs > kMaxLogprobs) {
    return Invalid("prompt_logprobs must be in [0, ", kMaxLogprobs, "] (or -1 for none), got ",
                   prompt_logprobs);
  }
  if (max_tokens < 1) return Invalid("max_tokens must be at least 1, got ", max_tokens);
  if (min_tokens < 0) return Invalid("min_tokens must be >= 0, got ", min_tokens);
  if (min_tokens > max_tokens) {
    return Invalid("min_tokens (", min_tokens, ") must not exceed max_tokens (", max_tokens, ")");
  }
  for (int32_t id : stop_token_ids) {
    if (id < 0 || id >= vocab_size) {
      return Invalid("stop_token_ids entry ", id, " is outside the vocabulary [0, ", vocab_size, ")");
    }
  }
  for (const std::string& s : stop) {
    // An empty stop string would match before every token.
    if (s.empty()) return Invalid("stop must not contain an empty string");
  }
  return absl::OkStatus();
}

}  // namespace kaon
