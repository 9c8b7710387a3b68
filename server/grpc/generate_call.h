// The reactors behind Generate (server streaming) and Complete (unary).
// Neither holds a thread while it waits: the engine's notify posts a wake-up
// to the ServingState's work queue, which drains ready events and (for
// Generate) starts the next write; OnWriteDone drains again. At most one
// write is in flight per stream; events that arrive meanwhile merge in the
// engine's channel and go out in the next message.
//
// Cancellation, an expired deadline or a broken stream drops the engine
// request handle at once, which aborts the request and frees its KV blocks.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include "kaon/v1/kaon.pb.h"
#include "server/api/parsed_request.h"
#include "server/grpc/serving_state.h"

namespace kaon::grpc_api {

// Both take a request that parsed; submission errors (queue full, ...) are
// reported through the returned reactor. `state` must outlive the call
// (the server's Shutdown waits for every call).
grpc::ServerWriteReactor<kaon::v1::GenerateResponse>* StartGenerate(ServingState* state,
                                                                     const api::ServingBackend& backend,
                                                                     grpc::CallbackServerContext* context,
                                                                     api::ParsedRequest request);
grpc::ServerUnaryReactor* StartComplete(ServingState* state, const api::ServingBackend& backend,
                                        grpc::CallbackServerContext* context, api::ParsedRequest request,
                                        kaon::v1::GenerateResponse* response);

// A stream that ends at once with `status` (refused before any work).
grpc::ServerWriteReactor<kaon::v1::GenerateResponse>* RefuseStream(const grpc::Status& status);

}  // namespace kaon::grpc_api
