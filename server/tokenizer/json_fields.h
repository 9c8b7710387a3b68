// Field access for tokenizer.json with errors that name the field path
// (e.g. "pre_tokenizer.pretokenizers[0].pattern"). The caller prefixes the file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kaon::tj {

// tokenizer.json vocabularies are large; nlohmann::json's std::map inserts in
// O(log n) where ordered_json would be quadratic.
using Json = nlohmann::json;

// The largest token id a tokenizer.json may use: 2^24 - 1, the bound on
// config.json's vocab_size (server/loading/model_config.h), so no larger id
// could have an embedding row; real vocabularies stop near 2^18.
inline constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

// A token id in [0, kMaxTokenId]; the error names `field`.
absl::StatusOr<int32_t> TokenId(const Json& v, const std::string& field);

// `v` as JSON for an error message: one line, at most 80 characters.
std::string Excerpt(const Json& v);

absl::Status Invalid(const std::string& field, const std::string& what);
absl::Status Unsupported(const std::string& field, const std::string& value);

std::string Sub(const std::string& path, const std::string& key);
std::string Index(const std::string& path, size_t i);

// obj[key] as a string; missing or non-string is an error.
absl::StatusOr<std::string> String(const Json& obj, const std::string& key, const std::string& path);
// A missing or null key yields `fallback`.
absl::StatusOr<std::string> StringOr(const Json& obj, const std::string& key,
                                     const std::string& path, const std::string& fallback);
absl::StatusOr<std::optional<std::string>> OptionalString(const Json& obj, const std::string& key,
                                                          const std::string& path);
absl::StatusOr<bool> BoolOr(const Json& obj, const std::string& key, const std::string& path,
                            bool fallback);
absl::StatusOr<int64_t> IntOr(const Json& obj, const std::string& key, const std::string& path,
                              int64_t fallback);
absl::StatusOr<const Json*> Array(const Json& obj, const std::string& key, const std::string& path);
// The "type" of a component object.
absl::StatusOr<std::string> Type(const Json& obj, const std::string& path);

// A {"String": s} or {"Regex": r} pattern; *is_regex tells which.
absl::StatusOr<std::string> Pattern(const Json& obj, const std::string& key, const std::string& path,
                                    bool* is_regex);

}  // namespace kaon::tj
