#include "server/api/tokenize_request.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/api/chat_request.h"
#include "server/api/common_fields.h"
#include "server/api/field_reader.h"
#include "server/tokenizer/tokenizer.h"

namespace kaon::api {

using Json = nlohmann::ordered_json;

std::variant<Json, ApiError> Tokenize(const Json& body, const ServingContext& ctx) {
  if (!body.is_object()) return InvalidRequest("", "the request body must be a JSON object");
  FieldReader r(body);
  CheckModel(r, ctx);
  bool return_token_strs = false;
  r.Bool("return_token_strs", &return_token_strs);
  const bool chat = r.Get("messages") != nullptr;
  if (chat && r.Get("prompt")) r.Fail("prompt", "give either prompt or messages, not both");
  // As vLLM: a rendered chat prompt already holds its special tokens.
  bool add_special_tokens = !chat;
  r.Bool("add_special_tokens", &add_special_tokens);
  std::string text;
  if (chat) {
    std::optional<std::string> rendered = RenderChatPrompt(r, ctx);
    if (rendered) text = std::move(*rendered);
  } else {
    r.String("prompt", &text);
    if (r.ok() && !r.Get("prompt")) r.Fail("prompt", "prompt (a string) or messages is required");
  }
  if (!r.ok()) return *r.error();

  TokenizeResult t = TokenizeText(text, add_special_tokens, return_token_strs, ctx);
  Json out = {{"count", t.ids.size()}, {"max_model_len", ctx.max_model_len}, {"tokens", t.ids}, {"token_strs", nullptr}};
  if (t.token_strs) out["token_strs"] = *t.token_strs;
  return out;
}

TokenizeResult TokenizeText(const std::string& text, bool add_special_tokens, bool return_token_strs,
                            const ServingContext& ctx) {
  TokenizeResult t;
  t.ids = ctx.tokenizer->Encode(text, add_special_tokens);
  if (return_token_strs) {
    t.token_strs.emplace();
    for (int32_t id : t.ids) t.token_strs->push_back(ctx.tokenizer->IdToToken(id));
  }
  return t;
}

std::variant<std::string, ApiError> DetokenizeIds(const std::vector<int64_t>& ids, const ServingContext& ctx) {
  const int32_t vocab = ctx.tokenizer->VocabSize();
  std::vector<int32_t> narrow;
  narrow.reserve(ids.size());
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab) {
      return InvalidRequest("tokens", absl::StrCat("token id ", id, " is out of range [0, ", vocab, ")"));
    }
    narrow.push_back(static_cast<int32_t>(id));
  }
  return ctx.tokenizer->Decode(narrow, /*skip_special_tokens=*/false);
}

std::variant<Json, ApiError> Detokenize(const Json& body, const ServingContext& ctx) {
  if (!body.is_object()) return InvalidRequest("", "the request body must be a JSON object");
  FieldReader r(body);
  CheckModel(r, ctx);
  if (!r.ok()) return *r.error();
  const Json* tokens = r.Get("tokens");
  if (tokens == nullptr) return InvalidRequest("tokens", "tokens (a list of token ids) is required");
  if (!tokens->is_array()) return InvalidRequest("tokens", "tokens must be a list of token ids");
  std::vector<int64_t> ids;
  ids.reserve(tokens->size());
  for (const Json& v : *tokens) {
    std::optional<int64_t> id = AsInteger(v);
    if (!v.is_number_integer() || !id) return InvalidRequest("tokens", "tokens must be a list of token ids");
    ids.push_back(*id);
  }
  std::variant<std::string, ApiError> text = DetokenizeIds(ids, ctx);
  if (auto* e = std::get_if<ApiError>(&text)) return *e;
  return Json{{"prompt", std::move(std::get<std::string>(text))}};
}

}  // namespace kaon::api
