#include "server/api/common_fields.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace kaon::api {
namespace {

using Json = nlohmann::ordered_json;

// OpenAI allows 4 stop sequences; vLLM more. The limits keep the per-token
// stop-string scan cheap.
void ReadStop(FieldReader& r, const RequestLimits& limits, ParsedRequest& out) {
  const Json* v = r.Get("stop");
  if (!v) return;
  if (v->is_array() && v->size() > limits.max_stop) {
    return r.Fail("stop", absl::StrCat("stop may hold at most ", limits.max_stop, " strings, got ", v->size()));
  }
  if (v->is_string()) {
    out.params.stop = {v->get<std::string>()};
  } else if (v->is_array()) {
    for (const Json& s : *v) {
      if (!s.is_string()) return r.Fail("stop", "stop must be a string or a list of strings");
      out.params.stop.push_back(s.get<std::string>());
    }
  } else {
    return r.Fail("stop", "stop must be a string or a list of strings");
  }
  for (const std::string& s : out.params.stop) {
    if (s.empty()) return r.Fail("stop", "stop strings must not be empty");
    if (s.size() > limits.max_stop_bytes) {
      return r.Fail("stop", absl::StrCat("stop strings may be at most ", limits.max_stop_bytes, " bytes long, got ",
                                         s.size()));
    }
  }
}

void ReadStopTokenIds(FieldReader& r, const RequestLimits& limits, ParsedRequest& out) {
  const Json* v = r.Get("stop_token_ids");
  if (!v) return;
  if (!v->is_array()) return r.Fail("stop_token_ids", "stop_token_ids must be a list of integers");
  if (v->size() > limits.max_stop_token_ids) {
    return r.Fail("stop_token_ids", absl::StrCat("stop_token_ids may hold at most ", limits.max_stop_token_ids,
                                                 " ids, got ", v->size()));
  }
  for (const Json& id : *v) {
    std::optional<int64_t> i = AsInteger(id);
    if (!i || *i < INT32_MIN || *i > INT32_MAX) {
      return r.Fail("stop_token_ids", "stop_token_ids must be a list of integers");
    }
    out.params.stop_token_ids.push_back(static_cast<int32_t>(*i));
  }
}

// {"50256": -100}: OpenAI's keys are token ids written as strings.
void ReadLogitBias(FieldReader& r, const RequestLimits& limits, ParsedRequest& out) {
  const Json* v = r.Get("logit_bias");
  if (!v) return;
  if (!v->is_object()) return r.Fail("logit_bias", "logit_bias must be an object mapping token ids to numbers");
  if (v->size() > limits.max_logit_bias) {
    return r.Fail("logit_bias", absl::StrCat("logit_bias may hold at most ", limits.max_logit_bias,
                                             " entries, got ", v->size()));
  }
  for (auto it = v->begin(); it != v->end(); ++it) {
    const std::string& key = it.key();
    int64_t id = 0;
    const bool digits = !key.empty() && key.size() <= 10 &&
                        std::all_of(key.begin(), key.end(), [](unsigned char c) { return std::isdigit(c); });
    if (digits) id = std::stoll(key);
    if (!digits || id > INT32_MAX) {
      return r.Fail("logit_bias", absl::StrCat("logit_bias keys must be token ids, got \"", Quote(key), "\""));
    }
    if (!it.value().is_number()) {
      return r.Fail("logit_bias", absl::StrCat("logit_bias value for token ", key, " must be a number"));
    }
    out.params.logit_bias.emplace_back(static_cast<int32_t>(id), it.value().get<float>());
  }
}

void ReadSeed(FieldReader& r, ParsedRequest& out) {
  const Json* v = r.Get("seed");
  if (!v) return;
  std::optional<int64_t> s = AsInteger(*v);
  if (!s) return r.Fail("seed", "seed must be an integer");
  // Negative seeds are valid in OpenAI's API; reinterpreting keeps them distinct.
  out.params.seed = static_cast<uint64_t>(*s);
}

void ReadStreamOptions(FieldReader& r, ParsedRequest& out) {
  const Json* v = r.Get("stream_options");
  if (!v) return;
  if (!v->is_object()) return r.Fail("stream_options", "stream_options must be an object");
  if (!out.stream) return r.Fail("stream_options", "stream_options is only allowed when stream is true");
  auto it = v->find("include_usage");
  if (it == v->end() || it->is_null()) return;
  if (!it->is_boolean()) return r.Fail("stream_options", "stream_options.include_usage must be a boolean");
  out.include_usage = it->get<bool>();
}

void ReadResponseFormat(FieldReader& r) {
  const Json* v = r.Get("response_format");
  if (!v) return;
  if (!v->is_object() || !v->contains("type") || !(*v)["type"].is_string()) {
    return r.Fail("response_format", "response_format must be an object with a string \"type\"");
  }
  const std::string type = (*v)["type"].get<std::string>();
  if (type != "text") {
    return r.Fail("response_format", absl::StrCat("response_format type \"", type, "\" is not supported yet"));
  }
}

}  // namespace

void CheckModel(FieldReader& r, const ServingContext& ctx) {
  if (const Json* m = r.Get("model")) {
    if (!m->is_string()) {
      r.Fail("model", "model must be a string");
    } else if (m->get<std::string>() != ctx.served_model_name) {
      r.Fail(ApiError{404, absl::StrCat("The model `", Quote(m->get<std::string>()), "` does not exist."), "not_found_error",
                      "model", "model_not_found"});
    }
  }
}

void ReadCommonFields(FieldReader& r, const ServingContext& ctx, ParsedRequest& out, bool* max_tokens_given) {
  out.model = ctx.served_model_name;
  CheckModel(r, ctx);
  SamplingParams& p = out.params;
  r.Int("n", &p.n);
  r.Int("best_of", &p.best_of);
  r.Number("temperature", &p.temperature);
  r.Number("top_p", &p.top_p);
  r.Int("top_k", &p.top_k);
  r.Number("min_p", &p.min_p);
  r.Number("presence_penalty", &p.presence_penalty);
  r.Number("frequency_penalty", &p.frequency_penalty);
  r.Number("repetition_penalty", &p.repetition_penalty);
  ReadSeed(r, out);
  ReadStop(r, ctx.limits, out);
  ReadStopTokenIds(r, ctx.limits, out);
  ReadLogitBias(r, ctx.limits, out);
  r.Bool("ignore_eos", &p.ignore_eos);
  r.Int("min_tokens", &p.min_tokens);
  r.Bool("skip_special_tokens", &p.skip_special_tokens);
  r.Bool("include_stop_str_in_output", &p.include_stop_str_in_output);
  r.Int("priority", &out.priority);
  r.OptionalString("user", &out.user);
  r.Bool("stream", &out.stream);
  ReadStreamOptions(r, out);
  ReadResponseFormat(r);

  // max_completion_tokens is the newer name; it wins when both are given, as in vLLM.
  *max_tokens_given = false;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (!r.Get(key)) continue;
    r.Int(key, &p.max_tokens);
    *max_tokens_given = true;
  }
}

std::string ParamFromValidateMessage(std::string_view message) {
  size_t end = 0;
  while (end < message.size() && (std::isalnum(static_cast<unsigned char>(message[end])) || message[end] == '_')) {
    ++end;
  }
  return std::string(message.substr(0, end));
}

std::optional<ApiError> FinishCommonFields(const ServingContext& ctx, bool max_tokens_given, ParsedRequest& out) {
  const char* prompt_param = out.kind == RequestKind::kChat ? "messages" : "prompt";
  size_t longest = 0;
  for (const std::vector<int32_t>& ids : out.prompts) {
    if (ids.empty()) return InvalidRequest(prompt_param, "the prompt must contain at least one token");
    for (int32_t id : ids) {
      if (id < 0 || id >= ctx.vocab_size) {
        return InvalidRequest(prompt_param, absl::StrCat("prompt token id ", id, " is outside the vocabulary (0..",
                                                         ctx.vocab_size - 1, ")"));
      }
    }
    longest = std::max(longest, ids.size());
  }
  const int64_t prompt_len = static_cast<int64_t>(longest);
  if (!max_tokens_given) {
    out.params.max_tokens = out.kind == RequestKind::kChat ? ctx.max_model_len - prompt_len : 16;
  }
  // The context check comes before Validate so that a chat prompt that fills
  // the context (default max_tokens 0) reports the token counts, not
  // "max_tokens must be at least 1". Compared without the sum, which could
  // overflow for a max_tokens near 2^63.
  if (out.params.max_tokens >= 0 &&
      (out.params.max_tokens > ctx.max_model_len - prompt_len || prompt_len >= ctx.max_model_len)) {
    // Worded as Engine::Submit words it, so the client sees one message.
    const int64_t shown = std::max<int64_t>(out.params.max_tokens, max_tokens_given ? 0 : 1);
    const int64_t requested = shown > INT64_MAX - prompt_len ? INT64_MAX : prompt_len + shown;
    ApiError e = InvalidRequest(
        prompt_param, absl::StrCat("This model's maximum context length is ", ctx.max_model_len,
                                   " tokens. However, you requested ", requested, " tokens (", prompt_len,
                                   " in the prompt, ", shown,
                                   " for the completion). Please reduce the prompt or max_tokens."));
    e.code = "context_length_exceeded";
    return e;
  }
  if (absl::Status s = out.params.Validate(ctx.vocab_size); !s.ok()) {
    std::string param = ParamFromValidateMessage(std::string(s.message()));
    // Chat names the number of alternatives top_logprobs.
    if (out.kind == RequestKind::kChat && param == "logprobs") param = "top_logprobs";
    return ApiErrorFromStatus(s, param);
  }
  return std::nullopt;
}

GenerationRequest ToGenerationRequest(const ParsedRequest& request, size_t prompt_index) {
  GenerationRequest g;
  g.prompt_ids = request.prompts.at(prompt_index);
  g.params = request.params;
  g.priority = request.priority;
  return g;
}

}  // namespace kaon::api
