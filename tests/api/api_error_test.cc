// ApiError's JSON shape and the status → HTTP mapping.
#include "server/api/api_error.h"

#include "gtest/gtest.h"

namespace kaon::api {
namespace {

TEST(ApiError, ToJsonHasOpenAiShapeWithNulls) {
  ApiError e{400, "temperature must be a number", "invalid_request_error", "temperature", std::nullopt};
  const nlohmann::ordered_json j = e.ToJson();
  EXPECT_EQ(j.dump(),
            R"({"error":{"message":"temperature must be a number","type":"invalid_request_error",)"
            R"("param":"temperature","code":null}})");
  ApiError bare{500, "boom", "server_error", std::nullopt, std::nullopt};
  EXPECT_TRUE(bare.ToJson()["error"]["param"].is_null());
}

TEST(ApiError, StatusMapping) {
  struct Case {
    absl::Status status;
    int http;
    const char* type;
  };
  const Case cases[] = {
      {absl::InvalidArgumentError("x"), 400, "invalid_request_error"},
      {absl::NotFoundError("x"), 404, "not_found_error"},
      {absl::ResourceExhaustedError("x"), 429, "rate_limit_exceeded"},
      {absl::UnauthenticatedError("x"), 401, "authentication_error"},
      {absl::FailedPreconditionError("x"), 503, "service_unavailable_error"},
      {absl::UnavailableError("x"), 503, "service_unavailable_error"},
      {absl::UnimplementedError("x"), 400, "invalid_request_error"},
      {absl::InternalError("x"), 500, "server_error"},
      {absl::UnknownError("x"), 500, "server_error"},
  };
  for (const Case& c : cases) {
    const ApiError e = ApiErrorFromStatus(c.status, "p");
    EXPECT_EQ(e.http_status, c.http) << c.status;
    EXPECT_EQ(e.type, c.type) << c.status;
    EXPECT_EQ(e.message, "x");
    EXPECT_EQ(e.param, "p");
  }
  EXPECT_EQ(ApiErrorFromStatus(absl::UnimplementedError("")).message, "not supported");
}

}  // namespace
}  // namespace kaon::api
