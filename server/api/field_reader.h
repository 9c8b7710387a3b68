// Typed reads of a JSON request body that remember the first error, so the
// parsers read field after field and check once at the end instead of
// testing every read. null counts as absent (clients send null for "unset").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nlohmann/json.hpp"
#include "server/api/api_error.h"

namespace kaon::api {

class FieldReader {
 public:
  explicit FieldReader(const nlohmann::ordered_json& body) : body_(body) {}

  // The value, or nullptr when absent or null.
  const nlohmann::ordered_json* Get(const char* key) const;

  // Each leaves *out unchanged when the field is absent or null, and records
  // "KEY must be a ..." (400, param KEY) when it has the wrong type.
  void Number(const char* key, float* out);
  void Int(const char* key, int64_t* out);
  void Int(const char* key, int32_t* out);
  void Bool(const char* key, bool* out);
  void String(const char* key, std::string* out);
  void OptionalString(const char* key, std::optional<std::string>* out);

  // Records an error unless one is already recorded (the first one wins).
  void Fail(ApiError error);
  void Fail(const std::string& param, const std::string& message) { Fail(InvalidRequest(param, message)); }

  bool ok() const { return !error_.has_value(); }
  const std::optional<ApiError>& error() const { return error_; }

 private:
  const nlohmann::ordered_json& body_;
  std::optional<ApiError> error_;
};

// A client-supplied string as error messages quote it: at most `max_bytes`
// (then "..."), so an error answer stays small whatever the client sent.
std::string Quote(std::string_view s, size_t max_bytes = 64);

// JSON integers, and floats with an integral value (16.0), as pydantic's lax
// mode accepts them; nullopt otherwise.
std::optional<int64_t> AsInteger(const nlohmann::ordered_json& v);

}  // namespace kaon::api
