// JSON parsing with bounds enforced while parsing, for text that comes from
// clients (request bodies, gRPC JSON-text fields). nlohmann's DOM parse has
// no depth limit (the values it builds are then copied, compared and printed
// recursively, so a deep document overflows the stack later), inserts into an
// ordered object by a linear search per key (quadratic in the number of keys)
// and lexes at ~100 MB/s, so a 16 MB body would hold a thread for a tenth of
// a second. This parser builds the same `nlohmann::ordered_json` values:
//   - nesting deeper than `max_depth` stops the parse at that bracket;
//   - more than `max_elements` values, or an object with more than
//     `max_object_keys` distinct keys, stops it there;
//   - object keys keep their first-seen order, and a repeated key's last
//     value wins at the position of its first occurrence, as a Python dict
//     (and so transformers' templates) would see the object;
//   - strings must be valid UTF-8 (as nlohmann's lexer requires), numbers
//     get nlohmann's types (unsigned, signed, then double).
// Linear in the input; strings are scanned eight bytes at a time.
// Thread-safe: no shared state.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace kaon {

struct JsonLimits {
  // Containers nested inside each other (the top-level value is depth 1).
  // 128 is serde_json's default; real requests (tool schemas included) stay
  // well under 20.
  int max_depth = 128;
  // Values of any kind in the document, containers included. 0: no limit.
  size_t max_elements = 0;
  // Distinct keys in one object. 0: no limit. Requests hold small objects;
  // the bound keeps each object's duplicate index in cache.
  size_t max_object_keys = 0;
};

enum class JsonParseFailure {
  kSyntax,    // not JSON (or not UTF-8)
  kDepth,     // nested deeper than max_depth
  kElements,  // more than max_elements values
  kKeys,      // an object with more than max_object_keys keys
};

struct JsonParseError {
  JsonParseFailure kind = JsonParseFailure::kSyntax;
  std::string message;  // one line: what and where (byte offset)
};

struct BoundedJsonResult {
  bool ok() const { return !error.has_value(); }
  nlohmann::ordered_json value;
  std::optional<JsonParseError> error;
};

// Parses all of `text` (trailing non-whitespace is a syntax error).
BoundedJsonResult ParseJsonBounded(std::string_view text, const JsonLimits& limits);

}  // namespace kaon
