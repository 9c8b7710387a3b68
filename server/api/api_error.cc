#include "server/api/api_error.h"

namespace kaon::api {

nlohmann::ordered_json ApiError::ToJson() const {
  nlohmann::ordered_json e = nlohmann::ordered_json::object();
  e["message"] = message;
  e["type"] = type;
  e["param"] = param ? nlohmann::ordered_json(*param) : nlohmann::ordered_json(nullptr);
  e["code"] = code ? nlohmann::ordered_json(*code) : nlohmann::ordered_json(nullptr);
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  out["error"] = std::move(e);
  return out;
}

ApiError InvalidRequest(std::string param, std::string message) {
  return ApiError{400, std::move(message), "invalid_request_error", std::move(param), std::nullopt};
}

ApiError ApiErrorFromStatus(const absl::Status& status, std::optional<std::string> param) {
  ApiError e;
  e.message = std::string(status.message());
  e.param = std::move(param);
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      e.http_status = 400;
      e.type = "invalid_request_error";
      break;
    case absl::StatusCode::kUnimplemented:
      // Something the API defines but kaon does not do: the client's request
      // is what has to change, so it is a 400 rather than a 501.
      e.http_status = 400;
      e.type = "invalid_request_error";
      if (e.message.empty()) e.message = "not supported";
      break;
    case absl::StatusCode::kNotFound:
      e.http_status = 404;
      e.type = "not_found_error";
      break;
    case absl::StatusCode::kResourceExhausted:
      e.http_status = 429;
      e.type = "rate_limit_exceeded";
      e.code = "rate_limit_exceeded";
      break;
    case absl::StatusCode::kUnauthenticated:
      e.http_status = 401;
      e.type = "authentication_error";
      e.code = "invalid_api_key";
      break;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnavailable:
      e.http_status = 503;
      e.type = "service_unavailable_error";
      break;
    default:
      e.http_status = 500;
      e.type = "server_error";
      break;
  }
  return e;
}

}  // namespace kaon::api
