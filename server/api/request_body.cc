#include "server/api/request_body.h"

#include "absl/strings/str_cat.h"
#include "server/common/bounded_json.h"

namespace kaon::api {
namespace {

using Json = nlohmann::ordered_json;

// What `what` ("the request body", "tools[0]") broke, in one line naming the
// flag that sets the limit.
std::string Describe(const JsonParseError& e, const std::string& what, const JsonLimits& limits) {
  switch (e.kind) {
    case JsonParseFailure::kDepth:
      return absl::StrCat(what, " nests deeper than ", limits.max_depth, " levels (--max-json-depth)");
    case JsonParseFailure::kElements:
      return absl::StrCat(what, " holds more than ", limits.max_elements, " JSON values (--max-json-elements)");
    case JsonParseFailure::kKeys:
      return absl::StrCat(what, " has an object with more than ", limits.max_object_keys,
                          " keys (--max-json-object-keys)");
    case JsonParseFailure::kSyntax:
      break;
  }
  return absl::StrCat(what, " is not valid JSON (or not valid UTF-8): ", e.message);
}

}  // namespace

std::variant<Json, ApiError> ParseRequestBody(std::string_view body, const RequestLimits& limits) {
  BoundedJsonResult r = ParseJsonBounded(body, limits.json);
  if (!r.ok()) return InvalidRequest("body", Describe(*r.error, "the request body", limits.json));
  if (!r.value.is_object()) return InvalidRequest("body", "the request body must be a JSON object");
  return std::move(r.value);
}

std::variant<Json, ApiError> ParseJsonText(std::string_view text, const RequestLimits& limits,
                                           const std::string& param) {
  BoundedJsonResult r = ParseJsonBounded(text, limits.json);
  if (!r.ok()) return InvalidRequest(param, Describe(*r.error, param, limits.json));
  return std::move(r.value);
}

}  // namespace kaon::api
