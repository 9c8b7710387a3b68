// HF's Replace component, shared by the Replace normalizer and the Replace
// decoder: every non-overlapping match of a {"String": s} or {"Regex": r}
// pattern is replaced by `content`.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/tokenizer/json_fields.h"
#include "server/tokenizer/regex.h"

namespace kaon {

class ReplacePattern {
 public:
  // Reads "pattern" and "content" from a Replace component at `path`.
  static absl::StatusOr<ReplacePattern> FromJson(const tj::Json& json, const std::string& path);

  void Apply(std::string& text) const;

 private:
  std::unique_ptr<Regex> regex_;  // null for string patterns
  std::string literal_;
  std::string content_;
};

}  // namespace kaon
