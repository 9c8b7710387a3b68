// Pre-tokenizer and normalizer regexes. HF compiles these with Oniguruma;
// PCRE2 (UTF + UCP + JIT) accepts the same syntax for the patterns real
// tokenizers use, after \s and \S are rewritten to Oniguruma's meaning.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace kaon {

class Regex {
 public:
  // Compiles an Oniguruma-syntax pattern; the error carries PCRE2's message.
  static absl::StatusOr<std::unique_ptr<Regex>> Compile(const std::string& pattern);
  // A pattern that matches `literal` exactly.
  static absl::StatusOr<std::unique_ptr<Regex>> Literal(std::string_view literal);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping matches, left to right, as byte ranges. Empty matches are
  // dropped. `text` must be valid UTF-8.
  void FindAll(std::string_view text, std::vector<std::pair<size_t, size_t>>* matches) const;

 private:
  explicit Regex(void* code) : code_(code) {}
  void* code_;  // pcre2_code_8*
};

// Rewrites \s and \S so that PCRE2 matches exactly Unicode White_Space, as
// Oniguruma does (PCRE2's \s also matches U+180E). Exposed for tests.
std::string RewriteWhitespaceClasses(const std::string& pattern);

}  // namespace kaon
