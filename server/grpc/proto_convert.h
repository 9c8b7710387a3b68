// Translation between kaon.v1 messages and the shared request layer
// (server/api/). Requests are read field by field into the typed requests
// the HTTP parsers produce (api::ParsedRequest, api::ChatPromptFields), with
// no JSON body in between, and then go through the same rules
// (server/api/request_rules.h, api::RenderChat), so both front ends share
// one set of defaults, limits and messages; an error's param is the proto
// field's name. Pure functions, no gRPC calls.
#pragma once

#include <string>
#include <variant>

#include "kaon/v1/kaon.pb.h"
#include "server/api/api_error.h"
#include "server/api/parsed_request.h"
#include "server/api/serving_context.h"
#include "server/api/tokenize_request.h"
#include "server/engine/request_output.h"

namespace kaon::grpc_api {

api::ParseResult ParseGenerateRequest(const kaon::v1::GenerateRequest& request, const api::ServingContext& ctx);
std::variant<api::TokenizeResult, api::ApiError> RunTokenize(const kaon::v1::TokenizeRequest& request,
                                                             const api::ServingContext& ctx);
std::variant<std::string, api::ApiError> RunDetokenize(const kaon::v1::DetokenizeRequest& request,
                                                       const api::ServingContext& ctx);

// Appends one engine event's news to `choice` (text, ids, logprobs, finish).
void AppendEvent(const RequestOutput& event, kaon::v1::Choice* choice);

}  // namespace kaon::grpc_api
