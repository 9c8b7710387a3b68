// A model family: the `architectures` names it serves and how it turns a
// parsed config into decoder options (after its own checks). One file per
// family (llama.cc, mistral.cc, qwen2.cc, qwen3.cc); registry.cc lists them.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/decoder.h"
#include "nlohmann/json.hpp"
#include "server/loading/model_config.h"

namespace kaon {

struct ModelFamily {
  std::vector<std::string> architectures;
  // Validates family-specific fields of config.json (`j`, read from `path`)
  // and fills the family's flags in `config`.
  absl::StatusOr<DecoderOptions> (*configure)(const nlohmann::ordered_json& j, const std::string& path,
                                              ModelConfig* config);
};

ModelFamily LlamaFamily();
ModelFamily MistralFamily();
ModelFamily Qwen2Family();
ModelFamily Qwen3Family();

// Shared by the families: refuses a sliding window that would be active.
absl::Status RefuseActiveSlidingWindow(const nlohmann::ordered_json& j, const std::string& path,
                                       const ModelConfig& config, bool gated_by_use_sliding_window);

// attention_bias (Llama, Qwen3): biases on q, k, v and o.
absl::StatusOr<bool> AttentionBias(const nlohmann::ordered_json& j, const std::string& path);

}  // namespace kaon
