// tokenizer.json pre-tokenizers: split normalized text into the words that the
// BPE model sees, rewriting them (ByteLevel, Metaspace) on the way.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/tokenizer/json_fields.h"

namespace kaon {

struct PreToken {
  std::string text;
  // Whether the piece begins at the start of the input; Metaspace's
  // prepend_scheme "first" depends on it.
  bool at_start;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `tokens` with their splits; empty splits are dropped.
  virtual void Apply(std::vector<PreToken>& tokens) const = 0;
};

// Sequence, Split, ByteLevel and Metaspace; other types are an error naming `path`.
absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const tj::Json& json,
                                                                const std::string& path);

}  // namespace kaon
