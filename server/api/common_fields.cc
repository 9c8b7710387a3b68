#include "server/api/common_fields.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "server/api/request_rules.h"

namespace kaon::api {
namespace {

using Json = nlohmann::ordered_json;

// The readers below check JSON types only; counts, lengths and ranges are
// rules (request_rules.h), checked on the typed values in FinishCommonFields.
// A body is bounded by the JSON limits before it gets here, so reading a long
// list before refusing its length costs no more than parsing it did.
void ReadStop(FieldReader& r, ParsedRequest& out) {
  const Json* v = r.Get("stop");
  if (!v) return;
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
}

void ReadStopTokenIds(FieldReader& r, ParsedRequest& out) {
  const Json* v = r.Get("stop_token_ids");
  if (!v) return;
  if (!v->is_array()) return r.Fail("stop_token_ids", "stop_token_ids must be a list of integers");
  for (const Json& id : *v) {
    std::optional<int64_t> i = AsInteger(id);
    if (!i || *i < INT32_MIN || *i > INT32_MAX) {
      return r.Fail("stop_token_ids", "stop_token_ids must be a list of integers");
    }
    out.params.stop_token_ids.push_back(static_cast<int32_t>(*i));
  }
}

// {"50256": -100}: OpenAI's keys are token ids written as strings.
void ReadLogitBias(FieldReader& r, ParsedRequest& out) {
  const Json* v = r.Get("logit_bias");
  if (!v) return;
  if (!v->is_object()) return r.Fail("logit_bias", "logit_bias must be an object mapping token ids to numbers");
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

std::optional<ApiError> CheckModelName(const std::string& name, const ServingContext& ctx) {
  if (name == ctx.served_model_name) return std::nullopt;
  return ApiError{404, absl::StrCat("The model `", Quote(name), "` does not exist."), "not_found_error", "model",
                  "model_not_found"};
}

void CheckModel(FieldReader& r, const ServingContext& ctx) {
  if (const Json* m = r.Get("model")) {
    if (!m->is_string()) {
      r.Fail("model", "model must be a string");
    } else if (std::optional<ApiError> e = CheckModelName(m->get<std::string>(), ctx)) {
      r.Fail(std::move(*e));
    }
  }
}

void ReadCommonFields(FieldReader& r, const ServingContext& ctx, ParsedRequest& out, bool* max_tokens_given) {
  out.model = ctx.served_model_name;
  CheckModel(r, ctx);
  SamplingParams& p = out.params;
  ApplyGenerationDefaults(ctx.generation, &p);
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
  ReadStop(r, out);
  ReadStopTokenIds(r, out);
  ReadLogitBias(r, out);
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

std::optional<ApiError> FinishCommonFields(const ServingContext& ctx, bool max_tokens_given, ParsedRequest& out,
                                           const FieldNames& names) {
  const int64_t vocab = ctx.vocab_size;
  size_t longest = 0;
  for (const std::vector<int32_t>& ids : out.prompts) {
    if (absl::Status s = CheckPromptIds(ids, vocab); !s.ok()) return ApiErrorFromStatus(s, names.prompt);
    longest = std::max(longest, ids.size());
  }
  const int64_t prompt_len = static_cast<int64_t>(longest);
  if (!max_tokens_given) {
    // Chat's default is the rest of the context; at least one token, so a
    // prompt that fills the context is refused with its token counts.
    out.params.max_tokens = names.chat_default_max_tokens ? std::max<int64_t>(ctx.max_model_len - prompt_len, 1) : 16;
  }
  // The context rule comes first so that its message gives the token counts.
  // A negative max_tokens is the sampling rule's.
  if (out.params.max_tokens >= 0) {
    if (absl::Status s = CheckContextLength(prompt_len, out.params.max_tokens, ctx.max_model_len); !s.ok()) {
      ApiError e = ApiErrorFromStatus(s, names.prompt);
      e.code = "context_length_exceeded";
      return e;
    }
  }
  if (absl::Status s = CheckSamplingParams(out.params, vocab, ctx.limits, names.logprobs); !s.ok()) {
    return ApiErrorFromStatus(s, ParamFromRuleMessage(s.message()));
  }
  return std::nullopt;
}

std::optional<ApiError> FinishCommonFields(const ServingContext& ctx, bool max_tokens_given, ParsedRequest& out) {
  FieldNames names;
  if (out.kind == RequestKind::kChat) {
    names.prompt = "messages";
    names.logprobs = "top_logprobs";
    names.chat_default_max_tokens = true;
  }
  return FinishCommonFields(ctx, max_tokens_given, out, names);
}

GenerationRequest ToGenerationRequest(const ParsedRequest& request, size_t prompt_index) {
  GenerationRequest g;
  g.prompt_ids = request.prompts.at(prompt_index);
  g.params = request.params;
  g.priority = request.priority;
  return g;
}

}  // namespace kaon::api
