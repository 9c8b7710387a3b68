// kaon.v1.Generation's handlers: admission (API key, serving phase), then
// the shared request layer for validation, then the engine through the
// reactors in generate_call.h. Handlers run on gRPC's callback threads and
// never block on the engine.
#pragma once

#include <optional>
#include <string>

#include "kaon/v1/kaon.grpc.pb.h"
#include "server/grpc/serving_state.h"

namespace kaon::grpc_api {

class GenerationService final : public kaon::v1::Generation::CallbackService {
 public:
  GenerationService(ServingState* state, std::optional<std::string> api_key)
      : state_(state), api_key_(std::move(api_key)) {}

  grpc::ServerWriteReactor<kaon::v1::GenerateResponse>* Generate(grpc::CallbackServerContext* context,
                                                                 const kaon::v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Complete(grpc::CallbackServerContext* context, const kaon::v1::GenerateRequest* request,
                                     kaon::v1::GenerateResponse* response) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context, const kaon::v1::TokenizeRequest* request,
                                     kaon::v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context,
                                       const kaon::v1::DetokenizeRequest* request,
                                       kaon::v1::DetokenizeResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const kaon::v1::ListModelsRequest* request,
                                       kaon::v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const kaon::v1::GetModelInfoRequest* request,
                                         kaon::v1::ModelInfo* response) override;

 private:
  // The backend when the call may proceed; null with *refusal set otherwise.
  const api::ServingBackend* Admit(grpc::CallbackServerContext* context, grpc::Status* refusal) const;

  ServingState* state_;
  std::optional<std::string> api_key_;
};

}  // namespace kaon::grpc_api
