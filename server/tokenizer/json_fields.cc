#include "server/tokenizer/json_fields.h"

namespace kaon::tj {

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(field + ": " + what);
}

absl::Status Unsupported(const std::string& field, const std::string& value) {
  return absl::InvalidArgumentError(field + " \"" + value + "\" is not supported");
}

absl::StatusOr<int32_t> TokenId(const Json& v, const std::string& field) {
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0)) {
    return Invalid(field, "expected a non-negative integer id, got " + Excerpt(v));
  }
  if (v.get<uint64_t>() > static_cast<uint64_t>(kMaxTokenId)) {
    return Invalid(field, "id " + std::to_string(v.get<uint64_t>()) + " is larger than the limit of " +
                              std::to_string(kMaxTokenId));
  }
  return static_cast<int32_t>(v.get<uint64_t>());
}

std::string Excerpt(const Json& v) {
  std::string s = v.dump(-1, ' ', /*ensure_ascii=*/true, Json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

std::string Sub(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

absl::StatusOr<std::string> String(const Json& obj, const std::string& key,
                                   const std::string& path) {
  if (!obj.is_object() || !obj.contains(key)) return Invalid(Sub(path, key), "missing");
  const Json& v = obj[key];
  if (!v.is_string()) return Invalid(Sub(path, key), "expected a string, got " + Excerpt(v));
  return v.get<std::string>();
}

absl::StatusOr<std::string> StringOr(const Json& obj, const std::string& key,
                                     const std::string& path, const std::string& fallback) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return fallback;
  return String(obj, key, path);
}

absl::StatusOr<std::optional<std::string>> OptionalString(const Json& obj, const std::string& key,
                                                          const std::string& path) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) {
    return std::optional<std::string>();
  }
  auto s = String(obj, key, path);
  if (!s.ok()) return s.status();
  return std::optional<std::string>(*std::move(s));
}

absl::StatusOr<bool> BoolOr(const Json& obj, const std::string& key, const std::string& path,
                            bool fallback) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return fallback;
  const Json& v = obj[key];
  if (!v.is_boolean()) return Invalid(Sub(path, key), "expected a boolean, got " + Excerpt(v));
  return v.get<bool>();
}

absl::StatusOr<int64_t> IntOr(const Json& obj, const std::string& key, const std::string& path,
                              int64_t fallback) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return fallback;
  const Json& v = obj[key];
  if (v.is_number_integer() && !(v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX)) {
    return v.get<int64_t>();
  }
  return Invalid(Sub(path, key), "expected an integer, got " + Excerpt(v));
}

absl::StatusOr<const Json*> Array(const Json& obj, const std::string& key,
                                  const std::string& path) {
  if (!obj.is_object() || !obj.contains(key)) return Invalid(Sub(path, key), "missing");
  const Json& v = obj[key];
  if (!v.is_array()) return Invalid(Sub(path, key), "expected an array");
  return &v;
}

absl::StatusOr<std::string> Type(const Json& obj, const std::string& path) {
  if (!obj.is_object()) return Invalid(path, "expected an object, got " + Excerpt(obj));
  return String(obj, "type", path);
}

absl::StatusOr<std::string> Pattern(const Json& obj, const std::string& key,
                                    const std::string& path, bool* is_regex) {
  const std::string field = Sub(path, key);
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_object()) {
    return Invalid(field, "expected {\"String\": ...} or {\"Regex\": ...}");
  }
  const Json& p = obj[key];
  if (p.contains("String") && p["String"].is_string()) {
    *is_regex = false;
    return p["String"].get<std::string>();
  }
  if (p.contains("Regex") && p["Regex"].is_string()) {
    *is_regex = true;
    return p["Regex"].get<std::string>();
  }
  return Invalid(field, "expected {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace kaon::tj
