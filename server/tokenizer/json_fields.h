// Field access for tokenizer.json with errors that name the field path
// (e.g. "pre_tokenizer.pretokenizers[0].pattern"). The caller prefixes the file.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kaon::tj {

// tokenizer.json vocabularies are large; nlohmann::json's std::map inserts in
// O(log n) where ordered_json would be quadratic.
using Json = nlohmann::json;

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
