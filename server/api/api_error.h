// OpenAI-style error objects and the one mapping from absl::Status codes to
// HTTP statuses, so every front end answers a given failure the same way.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace kaon::api {

struct ApiError {
  int http_status = 500;
  std::string message;
  std::string type;                 // "invalid_request_error", "not_found_error", ...
  std::optional<std::string> param; // the offending request field, when one is to blame
  std::optional<std::string> code;  // e.g. "model_not_found", "context_length_exceeded"

  // {"error": {"message", "type", "param", "code"}}; absent param/code are null,
  // as OpenAI sends them.
  nlohmann::ordered_json ToJson() const;
};

// 400 invalid_request_error for a bad request field.
ApiError InvalidRequest(std::string param, std::string message);

// InvalidArgument→400, NotFound→404, ResourceExhausted→429,
// Unauthenticated→401, FailedPrecondition/Unavailable→503,
// Unimplemented→400 (not supported), anything else→500.
ApiError ApiErrorFromStatus(const absl::Status& status, std::optional<std::string> param = std::nullopt);

}  // namespace kaon::api
