// kaon.v1.Generation's handlers: admission (API key, serving phase), then
// the shared request layer for validation, then the engine through the
// reactors in generate_call.h. Handlers run on gRPC's callback threads and
// never block on the engine.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "kaon/v1/kaon.grpc.pb.h"
#include "server/grpc/generate_call.h"
#include "server/grpc/call_registry.h"

namespace kaon {
class WorkPool;
}

namespace kaon::grpc_api {

// Every method raw: see generate_call.h for why.
using RawGenerationService = kaon::v1::Generation::WithRawCallbackMethod_Generate<
    kaon::v1::Generation::WithRawCallbackMethod_Complete<kaon::v1::Generation::WithRawCallbackMethod_Tokenize<
        kaon::v1::Generation::WithRawCallbackMethod_Detokenize<kaon::v1::Generation::WithRawCallbackMethod_ListModels<
            kaon::v1::Generation::WithRawCallbackMethod_GetModelInfo<kaon::v1::Generation::CallbackService>>>>>>;

class GenerationService final : public RawGenerationService {
 public:
  // `pool` (borrowed, outliving the server) runs the heavy parsing: chat
  // rendering, and any request larger than `inline_request_bytes`.
  GenerationService(CallRegistry* state, std::optional<std::string> api_key, WorkPool* pool,
                    size_t inline_request_bytes)
      : state_(state), api_key_(std::move(api_key)), pool_(pool), inline_request_bytes_(inline_request_bytes) {}

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Generate(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* Complete(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override;

 private:
  // The backend when the call may proceed; null with *refusal set otherwise.
  const api::ServingBackend* Admit(grpc::CallbackServerContext* context, grpc::Status* refusal) const;
  // Runs `work` here when `light`, else on the pool; false when the pool's
  // queue is full (work was not run).
  bool Run(bool light, std::function<void()> work) const;
  // Parses `request` (chat rendering, tokenization) and begins `call` with
  // the result: here for small requests, else on the pool.
  void BeginGeneration(PendingCall* call, std::shared_ptr<const kaon::v1::GenerateRequest> request,
                       size_t request_bytes, const api::ServingBackend* backend) const;

  CallRegistry* state_;
  std::optional<std::string> api_key_;
  WorkPool* pool_;
  size_t inline_request_bytes_;
};

}  // namespace kaon::grpc_api
