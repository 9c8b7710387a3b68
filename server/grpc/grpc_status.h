// The one mapping from the shared API errors (server/api/api_error.h, HTTP
// statuses) to gRPC status codes, so a request refused over HTTP with 4xx/5xx
// is refused over gRPC with the matching code and the same message.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include "server/api/api_error.h"

namespace kaon::grpc_api {

// How long a client should wait after RESOURCE_EXHAUSTED (queue full); sent
// as trailing metadata "retry-after-ms", the HTTP API's Retry-After: 1.
inline constexpr int kRetryAfterMs = 1000;

// 400→INVALID_ARGUMENT, 401→UNAUTHENTICATED, 404→NOT_FOUND,
// 429→RESOURCE_EXHAUSTED, 503→UNAVAILABLE, other→INTERNAL. The message gets
// the offending field's name when the API error has one and its text does
// not already start with it.
grpc::Status ToGrpcStatus(const api::ApiError& error);

// ToGrpcStatus, plus the retry hint in `context`'s trailing metadata for
// RESOURCE_EXHAUSTED. Call before Finish.
grpc::Status ErrorStatus(const api::ApiError& error, grpc::CallbackServerContext* context);

}  // namespace kaon::grpc_api
