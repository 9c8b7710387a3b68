#include "server/grpc/generation_service.h"

#include <variant>

#include "absl/strings/str_cat.h"
#include "server/api/tokenize_request.h"
#include "server/engine/engine.h"
#include "server/grpc/generate_call.h"
#include "server/grpc/grpc_status.h"
#include "server/grpc/proto_convert.h"
#include "server/http/http_policy.h"
#include "server/template/chat_template.h"

namespace kaon::grpc_api {
namespace {

using Json = nlohmann::ordered_json;

grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* context, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

grpc::ServerUnaryReactor* ReplyError(grpc::CallbackServerContext* context, const api::ApiError& error) {
  return Reply(context, ErrorStatus(error, context));
}

// An explicit model must be the served one, as over HTTP.
std::optional<api::ApiError> CheckModelName(const std::string& model, const api::ServingContext& ctx) {
  if (model.empty() || model == ctx.served_model_name) return std::nullopt;
  return api::ApiError{404, absl::StrCat("The model `", model, "` does not exist."), "not_found_error", "model",
                       "model_not_found"};
}

}  // namespace

const api::ServingBackend* GenerationService::Admit(grpc::CallbackServerContext* context,
                                                    grpc::Status* refusal) const {
  if (api_key_) {
    const auto& md = context->client_metadata();
    auto it = md.find("authorization");
    if (it == md.end() ||
        !http::BearerMatches(std::string_view(it->second.data(), it->second.size()), *api_key_)) {
      *refusal = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                              "a valid API key is required as metadata `authorization: Bearer KEY`");
      return nullptr;
    }
  }
  switch (state_->phase()) {
    case ServingPhase::kLoading:
      *refusal = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is still loading; retry shortly");
      return nullptr;
    case ServingPhase::kDraining:
      *refusal = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");
      return nullptr;
    case ServingPhase::kFailed:
      *refusal = grpc::Status(grpc::StatusCode::UNAVAILABLE, "engine failed: " + state_->fail_reason());
      return nullptr;
    case ServingPhase::kServing:
      break;
  }
  return state_->backend();
}

grpc::ServerWriteReactor<kaon::v1::GenerateResponse>* GenerationService::Generate(
    grpc::CallbackServerContext* context, const kaon::v1::GenerateRequest* request) {
  grpc::Status refusal;
  const api::ServingBackend* backend = Admit(context, &refusal);
  if (backend == nullptr) return RefuseStream(refusal);
  api::ParseResult parsed = ParseGenerateRequest(*request, backend->ctx);
  if (auto* e = std::get_if<api::ApiError>(&parsed)) return RefuseStream(ToGrpcStatus(*e));
  return StartGenerate(state_, *backend, context, std::move(std::get<api::ParsedRequest>(parsed)));
}

grpc::ServerUnaryReactor* GenerationService::Complete(grpc::CallbackServerContext* context,
                                                      const kaon::v1::GenerateRequest* request,
                                                      kaon::v1::GenerateResponse* response) {
  grpc::Status refusal;
  const api::ServingBackend* backend = Admit(context, &refusal);
  if (backend == nullptr) return Reply(context, refusal);
  api::ParseResult parsed = ParseGenerateRequest(*request, backend->ctx);
  if (auto* e = std::get_if<api::ApiError>(&parsed)) return ReplyError(context, *e);
  return StartComplete(state_, *backend, context, std::move(std::get<api::ParsedRequest>(parsed)), response);
}

grpc::ServerUnaryReactor* GenerationService::Tokenize(grpc::CallbackServerContext* context,
                                                      const kaon::v1::TokenizeRequest* request,
                                                      kaon::v1::TokenizeResponse* response) {
  grpc::Status refusal;
  const api::ServingBackend* backend = Admit(context, &refusal);
  if (backend == nullptr) return Reply(context, refusal);
  std::variant<Json, api::ApiError> body = TokenizeRequestToJson(*request);
  if (auto* e = std::get_if<api::ApiError>(&body)) return ReplyError(context, *e);
  std::variant<Json, api::ApiError> result = api::Tokenize(std::get<Json>(body), backend->ctx);
  if (auto* e = std::get_if<api::ApiError>(&result)) return ReplyError(context, *e);
  const Json& j = std::get<Json>(result);
  for (const Json& id : j["tokens"]) response->add_tokens(id.get<int32_t>());
  response->set_count(j["count"].get<int64_t>());
  response->set_max_model_len(j["max_model_len"].get<int64_t>());
  if (j["token_strs"].is_array()) {
    for (const Json& s : j["token_strs"]) response->add_token_strs(s.get<std::string>());
  }
  return Reply(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* GenerationService::Detokenize(grpc::CallbackServerContext* context,
                                                        const kaon::v1::DetokenizeRequest* request,
                                                        kaon::v1::DetokenizeResponse* response) {
  grpc::Status refusal;
  const api::ServingBackend* backend = Admit(context, &refusal);
  if (backend == nullptr) return Reply(context, refusal);
  Json body = Json::object();
  if (!request->model().empty()) body["model"] = request->model();
  body["tokens"] = Json(std::vector<int32_t>(request->tokens().begin(), request->tokens().end()));
  std::variant<Json, api::ApiError> result = api::Detokenize(body, backend->ctx);
  if (auto* e = std::get_if<api::ApiError>(&result)) return ReplyError(context, *e);
  response->set_text(std::get<Json>(result)["prompt"].get<std::string>());
  return Reply(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* GenerationService::ListModels(grpc::CallbackServerContext* context,
                                                        const kaon::v1::ListModelsRequest*,
                                                        kaon::v1::ListModelsResponse* response) {
  grpc::Status refusal;
  const api::ServingBackend* backend = Admit(context, &refusal);
  if (backend == nullptr) return Reply(context, refusal);
  kaon::v1::Model* m = response->add_models();
  m->set_id(backend->ctx.served_model_name);
  m->set_owned_by("kaon");
  m->set_max_model_len(backend->ctx.max_model_len);
  return Reply(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* GenerationService::GetModelInfo(grpc::CallbackServerContext* context,
                                                          const kaon::v1::GetModelInfoRequest* request,
                                                          kaon::v1::ModelInfo* response) {
  grpc::Status refusal;
  const api::ServingBackend* backend = Admit(context, &refusal);
  if (backend == nullptr) return Reply(context, refusal);
  if (std::optional<api::ApiError> e = CheckModelName(request->model(), backend->ctx)) return ReplyError(context, *e);
  const ModelConfig& config = backend->engine->info().config;
  response->set_id(backend->ctx.served_model_name);
  response->set_architecture(config.architecture);
  response->set_max_model_len(backend->ctx.max_model_len);
  response->set_max_position_embeddings(config.max_position_embeddings);
  response->set_vocab_size(backend->ctx.vocab_size);
  for (int32_t id : config.eos_token_ids) response->add_eos_token_ids(id);
  if (config.bos_token_id) response->set_bos_token_id(*config.bos_token_id);
  response->set_has_chat_template(backend->ctx.chat_template != nullptr);
  response->set_block_size(backend->engine->block_size());
  response->set_num_kv_blocks(backend->engine->num_kv_blocks());
  return Reply(context, grpc::Status::OK);
}

}  // namespace kaon::grpc_api
