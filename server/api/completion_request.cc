#include "server/api/completion_request.h"

#include "absl/strings/str_cat.h"
#include "server/api/common_fields.h"
#include "server/tokenizer/tokenizer.h"

namespace kaon::api {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kPromptForms =
    "prompt must be a string, a list of strings, a list of token ids, or a list of lists of token ids";

bool ReadTokenIds(const Json& list, std::vector<int32_t>& ids) {
  for (const Json& v : list) {
    std::optional<int64_t> id = AsInteger(v);
    if (!v.is_number_integer() || !id || *id < INT32_MIN || *id > INT32_MAX) return false;
    ids.push_back(static_cast<int32_t>(*id));
  }
  return true;
}

void ReadPrompts(FieldReader& r, const ServingContext& ctx, ParsedRequest& out) {
  const Json* v = r.Get("prompt");
  if (!v) return r.Fail("prompt", "prompt is required");
  const Tokenizer& tok = *ctx.tokenizer;
  // The prompt's text is kept only for echo: a long prompt is otherwise held
  // once, as token ids.
  auto add_text = [&](const std::string& text) {
    out.prompts.push_back(tok.Encode(text, /*add_special_tokens=*/true));
    if (out.echo) out.prompt_texts.push_back(text);
  };
  auto add_ids = [&](const Json& list) {
    std::vector<int32_t> ids;
    if (!ReadTokenIds(list, ids)) return false;
    // Decoded with special tokens kept so that echo shows what the model saw.
    if (out.echo) out.prompt_texts.push_back(tok.Decode(ids, /*skip_special_tokens=*/false));
    out.prompts.push_back(std::move(ids));
    return true;
  };
  if (v->is_string()) return add_text(v->get<std::string>());
  if (!v->is_array()) return r.Fail("prompt", kPromptForms);
  if (v->empty()) return r.Fail("prompt", "prompt must not be empty");
  const Json& first = v->front();
  if (first.is_number()) {
    if (!add_ids(*v)) r.Fail("prompt", kPromptForms);
    return;
  }
  // Checked before any prompt is tokenized: each one becomes engine work.
  if (v->size() > ctx.limits.max_prompts) {
    return r.Fail("prompt", absl::StrCat("prompt holds ", v->size(), " prompts; at most ", ctx.limits.max_prompts,
                                         " are allowed in one request (--max-prompts-per-request)"));
  }
  for (const Json& item : *v) {
    if (item.is_string() && first.is_string()) {
      add_text(item.get<std::string>());
    } else if (item.is_array() && first.is_array()) {
      if (item.empty()) return r.Fail("prompt", "prompt must not contain an empty list of token ids");
      if (!add_ids(item)) return r.Fail("prompt", kPromptForms);
    } else {
      return r.Fail("prompt", kPromptForms);
    }
  }
}

}  // namespace

ParseResult ParseCompletionRequest(const Json& body, const ServingContext& ctx) {
  if (!body.is_object()) return InvalidRequest("", "the request body must be a JSON object");
  ParsedRequest out;
  out.kind = RequestKind::kCompletion;
  FieldReader r(body);
  bool max_tokens_given = false;
  ReadCommonFields(r, ctx, out, &max_tokens_given);
  if (r.Get("suffix")) r.Fail("suffix", "suffix is not supported");
  r.Bool("echo", &out.echo);
  if (const Json* lp = r.Get("logprobs")) {
    // Completions take the number of alternatives; a boolean is a client
    // mixing up the chat API, which deserves a clear type error.
    // (Its range is a rule, checked in FinishCommonFields.)
    if (!lp->is_number() || !AsInteger(*lp)) {
      r.Fail("logprobs", "logprobs must be an integer");
    } else {
      r.Int("logprobs", &out.params.logprobs);
    }
  }
  // Echoed prompts carry their own logprobs when logprobs are asked for.
  if (out.echo && out.params.logprobs >= 0) out.params.prompt_logprobs = out.params.logprobs;
  if (r.ok()) ReadPrompts(r, ctx, out);
  if (!r.ok()) return *r.error();
  if (std::optional<ApiError> e = FinishCommonFields(ctx, max_tokens_given, out)) return *e;
  return out;
}

}  // namespace kaon::api
