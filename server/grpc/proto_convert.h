// Translation between kaon.v1 messages and the shared request layer
// (server/api/). A GenerateRequest becomes the JSON body the HTTP API would
// receive for the same request, so both front ends share one parser: the
// same defaults, limits and error messages. Pure functions, no gRPC calls.
#pragma once

#include <optional>
#include <variant>

#include "kaon/v1/kaon.pb.h"
#include "nlohmann/json.hpp"
#include "server/api/api_error.h"
#include "server/api/parsed_request.h"
#include "server/api/serving_context.h"
#include "server/engine/request_output.h"

namespace kaon::grpc_api {

// Validates `request` through ParseCompletionRequest (text, token ids) or
// ParseChatRequest (chat), exactly as the HTTP API would.
api::ParseResult ParseGenerateRequest(const kaon::v1::GenerateRequest& request, const api::ServingContext& ctx);

// The HTTP-equivalent body (exposed for tests and for Tokenize). JSON-text
// fields are parsed within `limits.json`, and message and tool counts are
// checked before anything is converted.
std::variant<nlohmann::ordered_json, api::ApiError> GenerateRequestToJson(const kaon::v1::GenerateRequest& request,
                                                                          const api::RequestLimits& limits);
std::variant<nlohmann::ordered_json, api::ApiError> TokenizeRequestToJson(const kaon::v1::TokenizeRequest& request,
                                                                          const api::RequestLimits& limits);

// Appends one engine event's news to `choice` (text, ids, logprobs, finish).
void AppendEvent(const RequestOutput& event, kaon::v1::Choice* choice);

}  // namespace kaon::grpc_api
