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

  const std::vector<int32_t> ids = ctx.tokenizer->Encode(text, add_special_tokens);
  Json out = {{"count", ids.size()}, {"max_model_len", ctx.max_model_len}, {"tokens", ids}, {"token_strs", nullptr}};
  if (return_token_strs) {
    Json strs = Json::array();
    for (int32_t id : ids) strs.push_back(ctx.tokenizer->IdToToken(id));
    out["token_strs"] = std::move(strs);
  }
  return out;
}

std::variant<Json, ApiError> Detokenize(const Json& body, const ServingContext& ctx) {
  if (!body.is_object()) return InvalidRequest("", "the request body must be a JSON object");
  FieldReader r(body);
  CheckModel(r, ctx);
  if (!r.ok()) return *r.error();
  const Json* tokens = r.Get("tokens");
  if (tokens == nullptr) return InvalidRequest("tokens", "tokens (a list of token ids) is required");
  if (!tokens->is_array()) return InvalidRequest("tokens", "tokens must be a list of token ids");
  const int32_t vocab = ctx.tokenizer->VocabSize();
  std::vector<int32_t> ids;
  for (const Json& v : *tokens) {
    std::optional<int64_t> id = AsInteger(v);
    if (!v.is_number_integer() || !id) return InvalidRequest("tokens", "tokens must be a list of token ids");
    if (*id < 0 || *id >= vocab) {
      return InvalidRequest("tokens", absl::StrCat("token id ", *id, " is out of range [0, ", vocab, ")"));
    }
    ids.push_back(static_cast<int32_t>(*id));
  }
  return Json{{"prompt", ctx.tokenizer->Decode(ids, /*skip_special_tokens=*/false)}};
}

}  // namespace kaon::api
