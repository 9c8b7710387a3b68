#include "server/grpc/generation_service.h"

#include <variant>

#include "absl/strings/str_cat.h"
#include "server/api/tokenize_request.h"
#include "server/engine/engine.h"
#include "server/grpc/generate_call.h"
#include "server/grpc/grpc_status.h"
#include "server/grpc/proto_convert.h"
#include "server/http/http_policy.h"
#include "server/common/memory_trimmer.h"
#include "server/common/work_pool.h"
#include "server/template/chat_template.h"

namespace kaon::grpc_api {
namespace {


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
  switch (state_->serving().phase()) {
    case ServingPhase::kLoading:
      *refusal = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is still loading; retry shortly");
      return nullptr;
    case ServingPhase::kDraining:
    case ServingPhase::kStopped:
      *refusal = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");
      return nullptr;
    case ServingPhase::kFailed:
      *refusal = grpc::Status(grpc::StatusCode::UNAVAILABLE, "engine failed: " + state_->serving().fail_reason());
      return nullptr;
    case ServingPhase::kReady:
      break;
  }
  return state_->serving().backend();
}

bool GenerationService::Run(bool light, std::function<void()> work) const {
  if (light) {
    work();
    return true;
  }
  return pool_->TryPost(std::move(work));
}

namespace {

// Begin must be called whatever happens (an unbegun call never finishes, and
// the server's shutdown waits for it).
void BeginWithParse(PendingCall* pending, const kaon::v1::GenerateRequest& request,
                    const api::ServingBackend& backend) {
  api::ParseResult parsed;
  try {
    parsed = ParseGenerateRequest(request, backend.ctx);
  } catch (const std::exception& e) {
    parsed = api::ApiError{500, std::string("internal error while parsing the request: ") + e.what(),
                           "server_error", std::nullopt, std::nullopt};
  }
  pending->Begin(std::move(parsed));
}

// Runs a unary call's work; a throw still finishes the call.
void FinishOnThrow(grpc::ServerUnaryReactor* reactor, const std::function<void()>& work) {
  try {
    work();
  } catch (const std::exception& e) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL, std::string("internal error: ") + e.what()));
  }
}

void TrimSoon(const api::ServingBackend& backend) {
  if (backend.trimmer != nullptr) backend.trimmer->Request();
}

const api::ApiError& Busy() {
  static const api::ApiError busy{429, "the server is busy parsing other requests; retry shortly",
                                  "server_busy_error", std::nullopt, std::nullopt};
  return busy;
}

}  // namespace

void GenerationService::BeginGeneration(PendingCall* call, std::shared_ptr<const kaon::v1::GenerateRequest> request,
                                        size_t request_bytes, const api::ServingBackend* backend) const {
  const bool light = !request->has_chat() && request_bytes <= inline_request_bytes_;
  const bool large = request_bytes >= api::kLargeRequestBytes;
  if (!Run(light, [call, request, backend, large] {
        BeginWithParse(call, *request, *backend);
        if (large) TrimSoon(*backend);
      })) {
    call->Begin(Busy());
  }
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* GenerationService::Generate(grpc::CallbackServerContext* context,
                                                                         const grpc::ByteBuffer* raw) {
  grpc::Status refusal;
  const api::ServingBackend* backend = Admit(context, &refusal);
  if (backend == nullptr) return RefuseStream(refusal);
  auto request = std::make_shared<kaon::v1::GenerateRequest>();
  if (grpc::Status s = ParseRequestBytes(*raw, request.get()); !s.ok()) return RefuseStream(s);
  NewCall<grpc::ServerWriteReactor<grpc::ByteBuffer>> call = NewGenerate(state_, *backend, context);
  BeginGeneration(call.call, std::move(request), raw->Length(), backend);
  return call.reactor;
}

grpc::ServerUnaryReactor* GenerationService::Complete(grpc::CallbackServerContext* context,
                                                      const grpc::ByteBuffer* raw, grpc::ByteBuffer* response) {
  grpc::Status refusal;
  const api::ServingBackend* backend = Admit(context, &refusal);
  if (backend == nullptr) return Reply(context, refusal);
  auto request = std::make_shared<kaon::v1::GenerateRequest>();
  if (grpc::Status s = ParseRequestBytes(*raw, request.get()); !s.ok()) return Reply(context, s);
  NewCall<grpc::ServerUnaryReactor> call = NewComplete(state_, *backend, context, response);
  BeginGeneration(call.call, std::move(request), raw->Length(), backend);
  return call.reactor;
}

grpc::ServerUnaryReactor* GenerationService::Tokenize(grpc::CallbackServerContext* context,
                                                      const grpc::ByteBuffer* raw, grpc::ByteBuffer* response) {
  grpc::Status refusal;
  const api::ServingBackend* backend = Admit(context, &refusal);
  if (backend == nullptr) return Reply(context, refusal);
  auto request = std::make_shared<kaon::v1::TokenizeRequest>();
  if (grpc::Status s = ParseRequestBytes(*raw, request.get()); !s.ok()) return Reply(context, s);
  // The default reactor may be finished from any thread, once.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const bool large = raw->Length() >= api::kLargeRequestBytes;
  auto work = [context, reactor, request, backend, response, large] {
    std::variant<api::TokenizeResult, api::ApiError> result = RunTokenize(*request, backend->ctx);
    if (auto* e = std::get_if<api::ApiError>(&result)) return reactor->Finish(ErrorStatus(*e, context));
    const api::TokenizeResult& t = std::get<api::TokenizeResult>(result);
    kaon::v1::TokenizeResponse out;
    out.mutable_tokens()->Add(t.ids.begin(), t.ids.end());
    out.set_count(static_cast<int64_t>(t.ids.size()));
    out.set_max_model_len(backend->ctx.max_model_len);
    if (t.token_strs) {
      for (const std::string& s : *t.token_strs) out.add_token_strs(s);
    }
    SerializeResponse(out, response);
    reactor->Finish(grpc::Status::OK);
    if (large) TrimSoon(*backend);
  };
  const bool light = !request->has_chat() && raw->Length() <= inline_request_bytes_;
  if (!Run(light, [reactor, work] { FinishOnThrow(reactor, work); })) reactor->Finish(ErrorStatus(Busy(), context));
  return reactor;
}

grpc::ServerUnaryReactor* GenerationService::Detokenize(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* raw, grpc::ByteBuffer* response) {
  grpc::Status refusal;
  const api::ServingBackend* backend = Admit(context, &refusal);
  if (backend == nullptr) return Reply(context, refusal);
  auto request = std::make_shared<kaon::v1::DetokenizeRequest>();
  if (grpc::Status s = ParseRequestBytes(*raw, request.get()); !s.ok()) return Reply(context, s);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto work = [context, reactor, request, backend, response] {
    std::variant<std::string, api::ApiError> result = RunDetokenize(*request, backend->ctx);
    if (auto* e = std::get_if<api::ApiError>(&result)) return reactor->Finish(ErrorStatus(*e, context));
    kaon::v1::DetokenizeResponse out;
    out.set_text(std::move(std::get<std::string>(result)));
    SerializeResponse(out, response);
    reactor->Finish(grpc::Status::OK);
  };
  if (!Run(raw->Length() <= inline_request_bytes_, [reactor, work] { FinishOnThrow(reactor, work); })) {
    reactor->Finish(ErrorStatus(Busy(), context));
  }
  return reactor;
}

grpc::ServerUnaryReactor* GenerationService::ListModels(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* raw, grpc::ByteBuffer* response) {
  grpc::Status refusal;
  const api::ServingBackend* backend = Admit(context, &refusal);
  if (backend == nullptr) return Reply(context, refusal);
  kaon::v1::ListModelsRequest request;
  if (grpc::Status s = ParseRequestBytes(*raw, &request); !s.ok()) return Reply(context, s);
  kaon::v1::ListModelsResponse out;
  kaon::v1::Model* m = out.add_models();
  m->set_id(backend->ctx.served_model_name);
  m->set_owned_by("kaon");
  m->set_max_model_len(backend->ctx.max_model_len);
  SerializeResponse(out, response);
  return Reply(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* GenerationService::GetModelInfo(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* raw, grpc::ByteBuffer* response) {
  grpc::Status refusal;
  const api::ServingBackend* backend = Admit(context, &refusal);
  if (backend == nullptr) return Reply(context, refusal);
  kaon::v1::GetModelInfoRequest request;
  if (grpc::Status s = ParseRequestBytes(*raw, &request); !s.ok()) return Reply(context, s);
  if (std::optional<api::ApiError> e = CheckModelName(request.model(), backend->ctx)) return ReplyError(context, *e);
  const ModelConfig& config = backend->engine->info().config;
  kaon::v1::ModelInfo out;
  out.set_id(backend->ctx.served_model_name);
  out.set_architecture(config.architecture);
  out.set_max_model_len(backend->ctx.max_model_len);
  out.set_max_position_embeddings(config.max_position_embeddings);
  out.set_vocab_size(backend->ctx.vocab_size);
  for (int32_t id : config.eos_token_ids) out.add_eos_token_ids(id);
  if (config.bos_token_id) out.set_bos_token_id(*config.bos_token_id);
  out.set_has_chat_template(backend->ctx.chat_template != nullptr);
  out.set_block_size(backend->engine->block_size());
  out.set_num_kv_blocks(backend->engine->num_kv_blocks());
  SerializeResponse(out, response);
  return Reply(context, grpc::Status::OK);
}

}  // namespace kaon::grpc_api
