#include "server/http/http_policy.h"

#include <cstdint>
#include <cstdio>
#include <random>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace kaon::http {
namespace {

// Debian's Abseil has its own string_view type, so these stay on std's.
std::string_view Strip(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Bytes outside printable ASCII (and backslashes) as \xNN; spaces too unless
// `keep_spaces`.
std::string Escape(std::string_view s, bool keep_spaces) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7F || c == '\\' || (c == ' ' && !keep_spaces)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Walk the longer input fully; a length mismatch still fails.
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

bool BearerMatches(std::string_view authorization, std::string_view key) {
  authorization = Strip(authorization);
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size() ||
      !EqualsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme)) {
    return false;
  }
  return ConstantTimeEquals(Strip(authorization.substr(kScheme.size())), key);
}

bool PathNeedsApiKey(std::string_view path) {
  return path.substr(0, 4) == "/v1/" || path == "/v1" || path == "/tokenize" || path == "/detokenize";
}

absl::StatusOr<std::vector<std::string>> ParseAllowedOrigins(std::string_view flag_value) {
  std::vector<std::string> out;
  const std::string_view v = Strip(flag_value);
  if (!v.empty() && v.front() == '[') {
    nlohmann::json j = nlohmann::json::parse(v, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_array()) return absl::InvalidArgumentError("--allowed-origins: not a JSON list");
    for (const auto& item : j) {
      if (!item.is_string()) return absl::InvalidArgumentError("--allowed-origins: list items must be strings");
      out.push_back(item.get<std::string>());
    }
  } else {
    std::string_view rest = v;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      const std::string_view part = Strip(rest.substr(0, comma));
      if (!part.empty()) out.emplace_back(part);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  for (const std::string& o : out) {
    if (o.empty()) return absl::InvalidArgumentError("--allowed-origins: empty origin");
    if (o != "*" && o.find("://") == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--allowed-origins: \"", o, "\" is not an origin (scheme://host[:port]) or *"));
    }
  }
  return out;
}

std::optional<std::string> AllowOrigin(const std::vector<std::string>& allowed, std::string_view origin) {
  if (origin.empty()) return std::nullopt;
  for (const std::string& a : allowed) {
    if (a == "*") return std::string("*");
    if (EqualsIgnoreCase(a, origin)) return std::string(origin);
  }
  return std::nullopt;
}

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string id = "req-";
  uint64_t v = rng();
  for (int i = 0; i < 16; ++i, v >>= 4) id += kHex[v & 15];
  return id;
}

std::optional<std::string> ClientRequestId(std::string_view value) {
  if (value.empty() || value.size() > kMaxRequestIdBytes) return std::nullopt;
  for (char c : value) {
    if (c < 0x20 || c > 0x7E) return std::nullopt;
  }
  return std::string(value);
}

// Spaces separate the log line's fields; controls could end it.
std::string EscapeForLog(std::string_view s) { return Escape(s, /*keep_spaces=*/false); }

std::string FormatRequestLog(const RequestLogEntry& e) {
  std::string line = absl::StrCat("kaon: request ", EscapeForLog(e.request_id), " ", EscapeForLog(e.method), " ",
                                  EscapeForLog(e.path), " ", e.status);
  if (e.prompt_tokens >= 0) absl::StrAppend(&line, " prompt_tokens=", e.prompt_tokens);
  if (e.output_tokens >= 0) absl::StrAppend(&line, " output_tokens=", e.output_tokens);
  char buf[64];
  if (e.ttft_seconds) {
    std::snprintf(buf, sizeof buf, " ttft_ms=%.1f", *e.ttft_seconds * 1e3);
    line += buf;
  }
  std::snprintf(buf, sizeof buf, " total_ms=%.1f", e.total_seconds * 1e3);
  line += buf;
  // Notes may quote an error message (client text): spaces stay readable.
  if (!e.note.empty()) absl::StrAppend(&line, " (", Escape(e.note, /*keep_spaces=*/true), ")");
  return line;
}

}  // namespace kaon::http
