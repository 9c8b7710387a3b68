// gRPC requests: protobuf bytes -> kaon.v1 messages -> the public
// conversions of server/grpc/proto_convert.h, then the shared validators,
// as generation_service.cc calls them, with `kaon serve`'s default limits.
//
// Input: byte 0 picks the message (even: GenerateRequest, odd:
// TokenizeRequest); the rest is the serialised message. Only
// proto_convert.h's functions are used, so a rewrite of the conversion
// (e.g. field by field instead of through JSON) keeps this harness valid.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "google/protobuf/stubs/logging.h"
#include "kaon/v1/kaon.pb.h"
#include "nlohmann/json.hpp"
#include "server/api/request_rules.h"
#include "server/api/serving_context.h"
#include "server/api/tokenize_request.h"
#include "server/grpc/proto_convert.h"
#include "server/template/chat_template.h"
#include "server/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using Json = nlohmann::ordered_json;
using kaon::api::ApiError;
using kaon::api::ServingContext;

struct Setup {
  std::unique_ptr<kaon::Tokenizer> tokenizer;
  std::unique_ptr<kaon::ChatTemplate> chat_template;
  ServingContext ctx;
};

void IgnoreProtobufLog(google::protobuf::LogLevel, const char*, int, const std::string&) {}

const Setup& GetSetup() {
  static const Setup* setup = [] {
    // Invalid UTF-8 in a string field makes the parse fail and protobuf log
    // an error; a line per input would drown libFuzzer's output.
    google::protobuf::SetLogHandler(&IgnoreProtobufLog);
    auto* s = new Setup;
    const std::string model = kaon::fuzz::SourceDir() + "/models/stories260k";
    auto tok = kaon::Tokenizer::FromModelDir(model);
    if (!tok.ok()) kaon::fuzz::SetupFailed(std::string(tok.status().message()));
    s->tokenizer = std::move(*tok);
    // stories260k has no template; chat input gets Llama 3.1's (tools).
    auto t = kaon::ChatTemplate::FromModelDir(model, kaon::fuzz::SourceDir() + "/tests/data/templates/llama3_1_meta.jinja");
    if (!t.ok()) kaon::fuzz::SetupFailed(std::string(t.status().message()));
    s->chat_template = std::move(*t);
    s->ctx.served_model_name = "stories260k";
    s->ctx.tokenizer = s->tokenizer.get();
    s->ctx.chat_template = s->chat_template.get();
    s->ctx.max_model_len = 512;
    s->ctx.vocab_size = 512;
    return s;
  }();
  return *setup;
}

// INVALID_ARGUMENT / NOT_FOUND / RESOURCE_EXHAUSTED map from 4xx; a 5xx from
// validation would be a server bug.
void CheckClientError(const ApiError& e) { KAON_FUZZ_CHECK(e.http_status >= 400 && e.http_status < 500); }

void RunGenerate(const kaon::v1::GenerateRequest& req, const ServingContext& ctx) {
  kaon::api::ParseResult result = kaon::grpc_api::ParseGenerateRequest(req, ctx);
  if (const auto* e = std::get_if<ApiError>(&result)) return CheckClientError(*e);
  const kaon::api::ParsedRequest& r = std::get<kaon::api::ParsedRequest>(result);
  // One prompt per gRPC request (text, token ids or one rendered chat).
  KAON_FUZZ_CHECK(r.prompts.size() == 1);
  KAON_FUZZ_CHECK(!r.prompts[0].empty());
  for (int32_t id : r.prompts[0]) KAON_FUZZ_CHECK(id >= 0 && id < ctx.vocab_size);
  KAON_FUZZ_CHECK(r.params.max_tokens <= ctx.max_model_len - static_cast<int64_t>(r.prompts[0].size()));
  KAON_FUZZ_CHECK(kaon::api::CheckSamplingParams(r.params, ctx.vocab_size, ctx.limits).ok());
  KAON_FUZZ_CHECK(r.kind == (req.has_chat() ? kaon::api::RequestKind::kChat : kaon::api::RequestKind::kCompletion));
}

void RunTokenize(const kaon::v1::TokenizeRequest& req, const ServingContext& ctx) {
  auto result = kaon::grpc_api::RunTokenize(req, ctx);
  if (const auto* e = std::get_if<ApiError>(&result)) return CheckClientError(*e);
  const kaon::api::TokenizeResult& t = std::get<kaon::api::TokenizeResult>(result);
  for (int32_t id : t.ids) KAON_FUZZ_CHECK(id >= 0 && id < ctx.vocab_size);
  if (req.return_token_strs()) KAON_FUZZ_CHECK(t.token_strs && t.token_strs->size() == t.ids.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Setup& s = GetSetup();
  if (size == 0) return 0;
  const uint8_t kind = data[0];
  const void* bytes = data + 1;
  const int n = static_cast<int>(size - 1);
  if (kind % 2 == 0) {
    kaon::v1::GenerateRequest req;
    if (req.ParseFromArray(bytes, n)) RunGenerate(req, s.ctx);
  } else {
    kaon::v1::TokenizeRequest req;
    if (req.ParseFromArray(bytes, n)) RunTokenize(req, s.ctx);
  }
  return 0;
}
