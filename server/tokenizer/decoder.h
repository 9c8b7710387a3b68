// tokenizer.json decoders: turn token strings back into text, chained as HF's
// decode_chain does so that Sequence behaves identically.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/tokenizer/json_fields.h"

namespace kaon {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void DecodeChain(std::vector<std::string>& tokens) const = 0;
};

// ByteLevel, Metaspace, Sequence, Replace, ByteFallback, Fuse, Strip.
absl::StatusOr<std::unique_ptr<Decoder>> ParseDecoder(const tj::Json& json, const std::string& path);

}  // namespace kaon
