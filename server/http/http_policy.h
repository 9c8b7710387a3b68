// The HTTP front end's decisions that need no networking, kept out of the
// Beast translation unit so they are cheap to compile and test: API-key
// checks, CORS origin matching, which paths need a key, the access-log line.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace kaon::http {

// Compares in time that depends only on the lengths, so response timing does
// not reveal how much of a guessed key was right.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Whether an Authorization header value carries `key` as a Bearer token.
bool BearerMatches(std::string_view authorization, std::string_view key);

// /v1/... and the tokenize routes need the key; probes (/health, /metrics)
// and /version stay open so orchestrators work without it.
bool PathNeedsApiKey(std::string_view path);

// --allowed-origins: a JSON list (as vLLM takes it, '["https://a.example"]')
// or a comma-separated list. "*" allows every origin. Errors name the flag.
absl::StatusOr<std::vector<std::string>> ParseAllowedOrigins(std::string_view flag_value);

// The Access-Control-Allow-Origin value for a request's Origin, or nullopt
// when CORS headers must not be sent.
std::optional<std::string> AllowOrigin(const std::vector<std::string>& allowed, std::string_view origin);

// "req-" and 16 random hex digits, for requests without a usable id.
std::string NewRequestId();

// X-Request-Id as a client sent it, if it is fit to repeat in a response
// header and a log line: 1..128 printable ASCII bytes. nullopt: generate one.
inline constexpr size_t kMaxRequestIdBytes = 128;
std::optional<std::string> ClientRequestId(std::string_view value);

// A client-supplied string made safe for one log line: bytes outside
// printable ASCII, spaces and backslashes become \xNN, so nothing a client
// sends can end the line or forge another.
std::string EscapeForLog(std::string_view s);

struct RequestLogEntry {
  std::string request_id;
  std::string method;
  std::string path;
  int status = 0;
  long long prompt_tokens = -1;  // -1: not a generation request
  long long output_tokens = -1;
  std::optional<double> ttft_seconds;
  double total_seconds = 0;
  std::string note;  // e.g. "client disconnected"
};

// One line, no trailing newline: "kaon: request req-… POST /v1/completions
// 200 prompt_tokens=5 output_tokens=16 ttft_ms=3.1 total_ms=20.4".
std::string FormatRequestLog(const RequestLogEntry& e);

}  // namespace kaon::http
