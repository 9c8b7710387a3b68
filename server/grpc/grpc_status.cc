#include "server/grpc/grpc_status.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace kaon::grpc_api {

grpc::Status ToGrpcStatus(const api::ApiError& error) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (error.http_status) {
    case 400: code = grpc::StatusCode::INVALID_ARGUMENT; break;
    case 401: code = grpc::StatusCode::UNAUTHENTICATED; break;
    case 404: code = grpc::StatusCode::NOT_FOUND; break;
    case 413: code = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    case 429: code = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    case 503: code = grpc::StatusCode::UNAVAILABLE; break;
    default: break;
  }
  std::string message = error.message;
  if (error.param && !error.param->empty() && !absl::StartsWith(message, *error.param)) {
    message = absl::StrCat(*error.param, ": ", message);
  }
  return grpc::Status(code, message);
}

grpc::Status ErrorStatus(const api::ApiError& error, grpc::CallbackServerContext* context) {
  grpc::Status status = ToGrpcStatus(error);
  if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED && error.http_status == 429) {
    context->AddTrailingMetadata("retry-after-ms", std::to_string(kRetryAfterMs));
  }
  return status;
}

}  // namespace kaon::grpc_api
