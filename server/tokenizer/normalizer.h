// tokenizer.json normalizers. They run on each piece of text between added
// tokens, never across them.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/tokenizer/json_fields.h"

namespace kaon {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void Normalize(std::string& text) const = 0;
};

// Sequence, Prepend, Replace, NFC and Strip; other types are an error naming `path`.
absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const tj::Json& json,
                                                            const std::string& path);

}  // namespace kaon
