// The reactors behind Generate (server streaming) and Complete (unary).
// Neither holds a thread while it waits: the engine's notify posts a wake-up
// to the CallRegistry's work queue, which drains ready events and (for
// Generate) starts the next write; OnWriteDone drains again. At most one
// write is in flight per stream; events that arrive meanwhile merge in the
// engine's channel and go out in the next message.
//
// A call exists before its request is parsed: parsing (chat rendering,
// tokenization) may run on the work pool, and the call's Begin receives the
// result from there. A client that cancels meanwhile gets CANCELLED once the
// parse returns. The methods are raw (grpc::ByteBuffer) so that bytes which
// are not a request get INVALID_ARGUMENT from us: gRPC's callback API itself
// answers a message it cannot deserialize with UNIMPLEMENTED. Responses are
// serialized here for the same reason.
//
// Cancellation, an expired deadline or a broken stream drops the engine
// request handle at once, which aborts the request and frees its KV blocks.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>

#include "kaon/v1/kaon.pb.h"
#include "server/api/parsed_request.h"
#include "server/grpc/call_registry.h"

namespace kaon::grpc_api {

// A call waiting for its parsed request. Begin is called exactly once, from
// any thread: an error finishes the call with its status, a request is
// submitted (submission errors, such as a full queue, finish it too).
class PendingCall {
 public:
  virtual ~PendingCall() = default;
  virtual void Begin(api::ParseResult parsed) = 0;
};

template <class Reactor>
struct NewCall {
  Reactor* reactor;  // returned to gRPC
  PendingCall* call;  // the same object; valid until Begin has been called
};

// `state` must outlive the call (the server's Shutdown waits for every
// call); `response` is gRPC's, valid until the call is done.
NewCall<grpc::ServerWriteReactor<grpc::ByteBuffer>> NewGenerate(CallRegistry* state, const api::ServingBackend& backend,
                                                                grpc::CallbackServerContext* context);
NewCall<grpc::ServerUnaryReactor> NewComplete(CallRegistry* state, const api::ServingBackend& backend,
                                              grpc::CallbackServerContext* context, grpc::ByteBuffer* response);

// A stream that ends at once with `status` (refused before any work).
grpc::ServerWriteReactor<grpc::ByteBuffer>* RefuseStream(const grpc::Status& status);

// Protobuf <-> the raw methods' bytes. Parse fails with INVALID_ARGUMENT
// naming the message type.
grpc::Status ParseRequestBytes(const grpc::ByteBuffer& bytes, google::protobuf::Message* out);
void SerializeResponse(const google::protobuf::Message& message, grpc::ByteBuffer* out);

}  // namespace kaon::grpc_api
