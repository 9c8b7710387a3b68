// HTTP request bodies: bytes -> ParseRequestBody -> every route's validator
// (/v1/completions, /v1/chat/completions, /tokenize, /detokenize), as
// server/http/request_work.cc calls them, with `kaon serve`'s default limits.
// Every input runs through all four routes: the body parse is shared, and a
// seed written for one route then also probes the others' type checks.
// There is no embeddings route (server/http/http_server.cc routes only these).
//
// The served model is the bundled stories260k. It ships no chat template, so
// chat uses tests/data/templates/*.jinja, as `kaon serve --chat-template`
// would: Llama 3.1's (tools, tool calls, ipython, dates) and Llama 2's.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "nlohmann/json.hpp"
#include "server/api/chat_request.h"
#include "server/api/completion_request.h"
#include "server/api/request_body.h"
#include "server/api/request_rules.h"
#include "server/api/serving_context.h"
#include "server/api/tokenize_request.h"
#include "server/common/utf8.h"
#include "server/template/chat_template.h"
#include "server/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using Json = nlohmann::ordered_json;
using kaon::api::ApiError;
using kaon::api::ParsedRequest;
using kaon::api::ServingContext;

struct Setup {
  std::unique_ptr<kaon::Tokenizer> tokenizer;
  std::unique_ptr<kaon::ChatTemplate> llama31, llama2;
  ServingContext ctx;        // chat with Llama 3.1's template
  ServingContext ctx_llama2; // the same with Llama 2's
};

// Built on the first input only: loading per input would dominate the run.
const Setup& GetSetup() {
  static const Setup* setup = [] {
    auto* s = new Setup;
    const std::string model = kaon::fuzz::SourceDir() + "/models/stories260k";
    auto tok = kaon::Tokenizer::FromModelDir(model);
    if (!tok.ok()) kaon::fuzz::SetupFailed(std::string(tok.status().message()));
    s->tokenizer = std::move(*tok);
    for (auto [name, out] : {std::pair{"llama3_1_meta.jinja", &s->llama31}, std::pair{"llama2_chat.jinja", &s->llama2}}) {
      auto t = kaon::ChatTemplate::FromModelDir(model, kaon::fuzz::SourceDir() + "/tests/data/templates/" + name);
      if (!t.ok()) kaon::fuzz::SetupFailed(std::string(t.status().message()));
      *out = std::move(*t);  // default jinja::Limits, as `kaon serve` without flags
    }
    // What serve_command.cc fills in: the config's 512 positions and vocab.
    s->ctx.served_model_name = "stories260k";
    s->ctx.tokenizer = s->tokenizer.get();
    s->ctx.chat_template = s->llama31.get();
    s->ctx.max_model_len = 512;
    s->ctx.vocab_size = 512;
    s->ctx_llama2 = s->ctx;
    s->ctx_llama2.chat_template = s->llama2.get();
    return s;
  }();
  return *setup;
}

// Validation answers the client: a 5xx here would be a server bug (a
// template Internal error, an uncaught case), never the client's fault.
void CheckClientError(const ApiError& e) { KAON_FUZZ_CHECK(e.http_status >= 400 && e.http_status < 500); }

// What every accepted generation request must satisfy before it reaches the
// engine (FinishCommonFields' promises).
void CheckAccepted(const ParsedRequest& r, const ServingContext& ctx) {
  KAON_FUZZ_CHECK(!r.prompts.empty());
  size_t longest = 0;
  for (const auto& ids : r.prompts) {
    KAON_FUZZ_CHECK(!ids.empty());
    for (int32_t id : ids) KAON_FUZZ_CHECK(id >= 0 && id < ctx.vocab_size);
    longest = std::max(longest, ids.size());
  }
  KAON_FUZZ_CHECK(r.params.max_tokens <= ctx.max_model_len - static_cast<int64_t>(longest));
  KAON_FUZZ_CHECK(kaon::api::CheckSamplingParams(r.params, ctx.vocab_size, ctx.limits).ok());
  if (r.echo) KAON_FUZZ_CHECK(r.prompt_texts.size() == r.prompts.size());
  for (size_t i = 0; i < r.prompts.size(); ++i) KAON_FUZZ_CHECK(kaon::api::ToGenerationRequest(r, i).prompt_ids == r.prompts[i]);
}

void RunGeneration(const Json& body, const ServingContext& ctx, bool chat) {
  kaon::api::ParseResult result = chat ? kaon::api::ParseChatRequest(body, ctx) : kaon::api::ParseCompletionRequest(body, ctx);
  if (const auto* e = std::get_if<ApiError>(&result)) return CheckClientError(*e);
  const ParsedRequest& r = std::get<ParsedRequest>(result);
  CheckAccepted(r, ctx);
  KAON_FUZZ_CHECK(r.kind == (chat ? kaon::api::RequestKind::kChat : kaon::api::RequestKind::kCompletion));
  if (chat) KAON_FUZZ_CHECK(r.prompts.size() == 1);
}

// The HTTP front end dumps tokenize answers with invalid UTF-8 replaced;
// doing the same here exercises that the answer is always printable.
std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void RunTokenize(const Json& body, const ServingContext& ctx) {
  auto result = kaon::api::Tokenize(body, ctx);
  if (const auto* e = std::get_if<ApiError>(&result)) return CheckClientError(*e);
  const Json& j = std::get<Json>(result);
  const Json& tokens = j.at("tokens");
  KAON_FUZZ_CHECK(j.at("count").get<size_t>() == tokens.size());
  for (const Json& id : tokens) KAON_FUZZ_CHECK(id.get<int64_t>() >= 0 && id.get<int64_t>() < ctx.vocab_size);
  if (j.at("token_strs").is_array()) KAON_FUZZ_CHECK(j.at("token_strs").size() == tokens.size());
  (void)Dump(j);
}

void RunDetokenize(const Json& body, const ServingContext& ctx) {
  auto result = kaon::api::Detokenize(body, ctx);
  if (const auto* e = std::get_if<ApiError>(&result)) return CheckClientError(*e);
  // Decode replaces invalid UTF-8 (from_utf8_lossy), so the text is valid.
  KAON_FUZZ_CHECK(kaon::utf8::IsValid(std::get<Json>(result).at("prompt").get<std::string>()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Setup& s = GetSetup();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto body = kaon::api::ParseRequestBody(text, s.ctx.limits);
  if (const auto* e = std::get_if<ApiError>(&body)) {
    CheckClientError(*e);
    return 0;
  }
  const Json& j = std::get<Json>(body);
  KAON_FUZZ_CHECK(j.is_object());
  RunGeneration(j, s.ctx, /*chat=*/false);
  RunGeneration(j, s.ctx, /*chat=*/true);
  RunGeneration(j, s.ctx_llama2, /*chat=*/true);
  RunTokenize(j, s.ctx);
  RunDetokenize(j, s.ctx);
  return 0;
}
