#include "server/tokenizer/tokenizer_config.h"

#include <cmath>

namespace kaon {
namespace {

using Json = nlohmann::ordered_json;

absl::Status Bad(const std::string& origin, const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(origin + ": " + field + ": " + what);
}

absl::Status ReadToken(const Json& json, const std::string& key, const std::string& origin,
                       std::optional<std::string>* out) {
  if (!json.contains(key) || json[key].is_null()) return absl::OkStatus();
  const Json& v = json[key];
  if (v.is_string()) {
    *out = v.get<std::string>();
    return absl::OkStatus();
  }
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    *out = v["content"].get<std::string>();
    return absl::OkStatus();
  }
  return Bad(origin, key, "expected a string or {\"content\": ...}");
}

absl::Status ReadBool(const Json& json, const std::string& key, const std::string& origin,
                      std::optional<bool>* out) {
  if (!json.contains(key) || json[key].is_null()) return absl::OkStatus();
  if (!json[key].is_boolean()) return Bad(origin, key, "expected a boolean");
  *out = json[key].get<bool>();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TokenizerConfig> ParseTokenizerConfig(const Json& json, const std::string& origin) {
  TokenizerConfig c;
  if (!json.is_object()) return absl::InvalidArgumentError(origin + ": expected a JSON object");
  for (auto [key, field] : {std::pair{"bos_token", &c.bos_token}, {"eos_token", &c.eos_token},
                            {"pad_token", &c.pad_token}, {"unk_token", &c.unk_token}}) {
    if (auto s = ReadToken(json, key, origin, field); !s.ok()) return s;
  }
  if (json.contains("tokenizer_class") && json["tokenizer_class"].is_string()) {
    c.tokenizer_class = json["tokenizer_class"].get<std::string>();
  }
  if (auto s = ReadBool(json, "add_bos_token", origin, &c.add_bos_token); !s.ok()) return s;
  if (auto s = ReadBool(json, "add_eos_token", origin, &c.add_eos_token); !s.ok()) return s;
  if (json.contains("chat_template") && !json["chat_template"].is_null()) {
    const Json& t = json["chat_template"];
    if (t.is_string()) {
      c.chat_template = t.get<std::string>();
    } else if (t.is_array()) {
      // Named templates: [{"name": "default", "template": ...}, ...].
      for (const auto& entry : t) {
        // value("name", "") would throw on a non-string name.
        if (entry.is_object() && entry.contains("name") && entry["name"].is_string() &&
            entry["name"].get<std::string>() == "default" && entry.contains("template") &&
            entry["template"].is_string()) {
          c.chat_template = entry["template"].get<std::string>();
        }
      }
    } else {
      return Bad(origin, "chat_template", "expected a string or a list of named templates");
    }
  }
  if (json.contains("model_max_length") && !json["model_max_length"].is_null()) {
    const Json& m = json["model_max_length"];
    if (m.is_number_unsigned()) {
      const auto u = m.get<uint64_t>();
      c.model_max_length = u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
    } else if (m.is_number_integer()) {
      c.model_max_length = m.get<int64_t>();
    } else if (m.is_number_float()) {
      const double d = m.get<double>();
      // Compare before converting: casting an out-of-range double is UB.
      if (std::isnan(d)) return Bad(origin, "model_max_length", "is NaN");
      if (d >= 9.2233720368547758e18) {
        c.model_max_length = INT64_MAX;
      } else if (d <= -9.2233720368547758e18) {
        c.model_max_length = INT64_MIN;
      } else {
        c.model_max_length = static_cast<int64_t>(d);
      }
    } else {
      return Bad(origin, "model_max_length", "expected a number");
    }
  }
  if (json.contains("clean_up_tokenization_spaces") && !json["clean_up_tokenization_spaces"].is_null()) {
    if (!json["clean_up_tokenization_spaces"].is_boolean()) {
      return Bad(origin, "clean_up_tokenization_spaces", "expected a boolean");
    }
    c.clean_up_tokenization_spaces = json["clean_up_tokenization_spaces"].get<bool>();
  }
  return c;
}

}  // namespace kaon
