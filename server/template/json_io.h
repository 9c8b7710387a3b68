// Bridges between client JSON and template values, and the `tojson` filter in
// transformers' form: json.dumps(x, ensure_ascii=False, indent=..., separators=...,
// sort_keys=...), which is what templates print into prompts.
#pragma once

#include <optional>
#include <string>

#include "nlohmann/json.hpp"
#include "server/template/value.h"

namespace kaon::jinja {

// Client JSON nested deeper than this is refused (ResourceExhausted) rather than
// converted by recursion that could overflow the stack. The API layer already
// refuses request JSON deeper than 128 levels; this keeps the interpreter safe
// without it, and leaves templates room under Budget::kMaxNesting to wrap the
// inputs in lists of their own.
constexpr int kMaxInputNesting = 256;

// The conversion is charged to the budget (it is part of the render's time).
Value FromJson(const nlohmann::ordered_json& j, Budget& budget);

struct JsonDumpOptions {
  std::optional<std::string> indent;  // nullopt: single line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool ensure_ascii = false;
  bool sort_keys = false;
};

std::string DumpJson(const Value& v, const JsonDumpOptions& options, Budget& budget);

}  // namespace kaon::jinja
