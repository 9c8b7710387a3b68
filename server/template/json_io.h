// Bridges between client JSON and template values, and the `tojson` filter in
// transformers' form: json.dumps(x, ensure_ascii=False, indent=..., separators=...,
// sort_keys=...), which is what templates print into prompts.
#pragma once

#include <optional>
#include <string>

#include "nlohmann/json.hpp"
#include "server/template/value.h"

namespace kaon::jinja {

Value FromJson(const nlohmann::ordered_json& j);

struct JsonDumpOptions {
  std::optional<std::string> indent;  // nullopt: single line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool ensure_ascii = false;
  bool sort_keys = false;
};

std::string DumpJson(const Value& v, const JsonDumpOptions& options);

}  // namespace kaon::jinja
