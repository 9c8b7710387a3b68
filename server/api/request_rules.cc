#include "server/api/request_rules.h"

#include <cctype>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace kaon::api {
namespace {

absl::Status Invalid(const auto&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); }

absl::Status CheckLogprobCount(const std::string& field, int32_t k) {
  // -1 is "none", the struct's default, so an absent field passes.
  if (k < -1 || k > SamplingParams::kMaxLogprobs) {
    return Invalid(field, " must be in [0, ", SamplingParams::kMaxLogprobs, "], got ", k);
  }
  return absl::OkStatus();
}

absl::Status CheckStops(const SamplingParams& p, int64_t vocab_size, const RequestLimits& limits) {
  if (p.stop.size() > limits.max_stop) {
    return Invalid("stop may hold at most ", limits.max_stop, " strings, got ", p.stop.size());
  }
  for (const std::string& s : p.stop) {
    // An empty stop string would match before every token.
    if (s.empty()) return Invalid("stop strings must not be empty");
    if (s.size() > limits.max_stop_bytes) {
      return Invalid("stop strings may be at most ", limits.max_stop_bytes, " bytes long, got ", s.size());
    }
  }
  if (p.stop_token_ids.size() > limits.max_stop_token_ids) {
    return Invalid("stop_token_ids may hold at most ", limits.max_stop_token_ids, " ids, got ",
                   p.stop_token_ids.size());
  }
  for (int32_t id : p.stop_token_ids) {
    if (id < 0 || id >= vocab_size) {
      return Invalid("stop_token_ids entry ", id, " is outside the vocabulary [0, ", vocab_size, ")");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckSamplingParams(const SamplingParams& p, int64_t vocab_size, const RequestLimits& limits,
                                 const std::string& logprobs_field) {
  // Comparisons are written so that NaN fails them.
  constexpr int32_t kMaxChoices = SamplingParams::kMaxChoices;
  if (p.n < 1 || p.n > kMaxChoices) return Invalid("n must be in [1, ", kMaxChoices, "], got ", p.n);
  if (p.best_of != 0 && (p.best_of < p.n || p.best_of > kMaxChoices)) {
    return Invalid("best_of must be in [n, ", kMaxChoices, "] (n = ", p.n, "), got ", p.best_of);
  }
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature)) {
    return Invalid("temperature must be a finite number >= 0, got ", p.temperature);
  }
  if (p.top_k < -1) return Invalid("top_k must be -1 (disabled), 0 (disabled) or positive, got ", p.top_k);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return Invalid("top_p must be in (0, 1], got ", p.top_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return Invalid("min_p must be in [0, 1], got ", p.min_p);
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f)) {
    return Invalid("presence_penalty must be in [-2, 2], got ", p.presence_penalty);
  }
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f)) {
    return Invalid("frequency_penalty must be in [-2, 2], got ", p.frequency_penalty);
  }
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty)) {
    return Invalid("repetition_penalty must be a finite number > 0, got ", p.repetition_penalty);
  }
  if (p.logit_bias.size() > limits.max_logit_bias) {
    return Invalid("logit_bias may hold at most ", limits.max_logit_bias, " entries, got ", p.logit_bias.size());
  }
  for (const auto& [id, bias] : p.logit_bias) {
    if (id < 0 || id >= vocab_size) {
      return Invalid("logit_bias token id ", id, " is outside the vocabulary [0, ", vocab_size, ")");
    }
    // An infinite bias would turn a masked (-inf) logit into NaN.
    if (!std::isfinite(bias)) return Invalid("logit_bias for token ", id, " must be finite, got ", bias);
  }
  if (absl::Status s = CheckLogprobCount(logprobs_field, p.logprobs); !s.ok()) return s;
  if (absl::Status s = CheckLogprobCount("prompt_logprobs", p.prompt_logprobs); !s.ok()) return s;
  if (p.max_tokens < 1) return Invalid("max_tokens must be at least 1, got ", p.max_tokens);
  if (p.min_tokens < 0) return Invalid("min_tokens must be >= 0, got ", p.min_tokens);
  if (p.min_tokens > p.max_tokens) {
    return Invalid("min_tokens (", p.min_tokens, ") must not exceed max_tokens (", p.max_tokens, ")");
  }
  return CheckStops(p, vocab_size, limits);
}

absl::Status CheckPromptIds(const std::vector<int32_t>& ids, int64_t vocab_size) {
  if (ids.empty()) return Invalid("the prompt must contain at least one token");
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size) {
      return Invalid("prompt token id ", id, " is outside the vocabulary (0..", vocab_size - 1, ")");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckContextLength(int64_t prompt_len, int64_t max_tokens, int64_t max_model_len) {
  // Compared without the sum, which could overflow for a max_tokens near 2^63.
  if (max_tokens <= max_model_len - prompt_len && prompt_len < max_model_len) return absl::OkStatus();
  const int64_t requested = max_tokens > INT64_MAX - prompt_len ? INT64_MAX : prompt_len + max_tokens;
  return Invalid("This model's maximum context length is ", max_model_len, " tokens. However, you requested ",
                 requested, " tokens (", prompt_len, " in the prompt, ", max_tokens,
                 " for the completion). Please reduce the prompt or max_tokens.");
}

absl::Status CheckGenerationRequest(const std::vector<int32_t>& prompt_ids, const SamplingParams& p,
                                    const ModelBounds& bounds, const RequestLimits& limits) {
  if (absl::Status s = CheckPromptIds(prompt_ids, bounds.vocab_size); !s.ok()) return s;
  if (p.max_tokens >= 0) {
    const int64_t prompt_len = static_cast<int64_t>(prompt_ids.size());
    if (absl::Status s = CheckContextLength(prompt_len, p.max_tokens, bounds.max_model_len); !s.ok()) return s;
  }
  return CheckSamplingParams(p, bounds.vocab_size, limits);
}

absl::Status CheckGenerationDefaults(const GenerationDefaults& defaults, int64_t vocab_size,
                                     const std::string& model_dir) {
  SamplingParams p;
  ApplyGenerationDefaults(defaults, &p);
  absl::Status s = CheckSamplingParams(p, vocab_size, RequestLimits{});
  if (s.ok()) return s;
  return Invalid(model_dir, "/generation_config.json: ", s.message());
}

std::string ParamFromRuleMessage(absl::string_view message) {
  size_t end = 0;
  while (end < message.size() && (std::isalnum(static_cast<unsigned char>(message[end])) || message[end] == '_')) {
    ++end;
  }
  return std::string(message.substr(0, end));
}

}  // namespace kaon::api
