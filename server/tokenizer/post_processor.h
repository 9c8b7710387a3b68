// tokenizer.json post-processors, applied to single sequences when special
// tokens are requested (pairs are not needed by an inference server).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/tokenizer/json_fields.h"

namespace kaon {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void Process(std::vector<int32_t>& ids) const = 0;
};

// A single-sequence template: `before` ids, the sequence, `after` ids.
std::unique_ptr<PostProcessor> MakeTemplatePostProcessor(std::vector<int32_t> before,
                                                         std::vector<int32_t> after);

// TemplateProcessing, ByteLevel, Sequence, RobertaProcessing, BertProcessing.
absl::StatusOr<std::unique_ptr<PostProcessor>> ParsePostProcessor(const tj::Json& json,
                                                                  const std::string& path);

}  // namespace kaon
