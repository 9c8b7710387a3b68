#include "server/api/field_reader.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace kaon::api {

std::string Quote(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  // Cut at a character boundary so the message stays valid UTF-8.
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut)) + "...";
}

std::optional<int64_t> AsInteger(const nlohmann::ordered_json& v) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return std::nullopt;
    }
    return v.get<int64_t>();
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    // 2^63 bounds: outside them the cast is undefined.
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

const nlohmann::ordered_json* FieldReader::Get(const char* key) const {
  auto it = body_.find(key);
  if (it == body_.end() || it->is_null()) return nullptr;
  return &*it;
}

void FieldReader::Fail(ApiError error) {
  if (!error_) error_ = std::move(error);
}

void FieldReader::Number(const char* key, float* out) {
  const nlohmann::ordered_json* v = Get(key);
  if (!v) return;
  if (!v->is_number()) return Fail(key, absl::StrCat(key, " must be a number"));
  *out = v->get<float>();
}

void FieldReader::Int(const char* key, int64_t* out) {
  const nlohmann::ordered_json* v = Get(key);
  if (!v) return;
  std::optional<int64_t> i = AsInteger(*v);
  if (!i) return Fail(key, absl::StrCat(key, " must be an integer"));
  *out = *i;
}

void FieldReader::Int(const char* key, int32_t* out) {
  int64_t wide = *out;
  Int(key, &wide);
  if (!ok()) return;
  if (wide < std::numeric_limits<int32_t>::min() || wide > std::numeric_limits<int32_t>::max()) {
    return Fail(key, absl::StrCat(key, " is out of range, got ", wide));
  }
  *out = static_cast<int32_t>(wide);
}

void FieldReader::Bool(const char* key, bool* out) {
  const nlohmann::ordered_json* v = Get(key);
  if (!v) return;
  if (!v->is_boolean()) return Fail(key, absl::StrCat(key, " must be a boolean"));
  *out = v->get<bool>();
}

void FieldReader::String(const char* key, std::string* out) {
  const nlohmann::ordered_json* v = Get(key);
  if (!v) return;
  if (!v->is_string()) return Fail(key, absl::StrCat(key, " must be a string"));
  *out = v->get<std::string>();
}

void FieldReader::OptionalString(const char* key, std::optional<std::string>* out) {
  std::string s;
  if (!Get(key)) return;
  String(key, &s);
  if (ok()) *out = std::move(s);
}

}  // namespace kaon::api
