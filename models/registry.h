// Loading a Hugging Face model directory: config.json → family (by
// `architectures`) → generation_config.json → safetensors → model.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/decoder.h"
#include "server/runtime/causal_lm.h"
#include "server/runtime/model_config.h"

namespace kaon {

// The architecture names kaon can run.
std::vector<std::string> SupportedArchitectures();

struct ModelInfo {
  ModelConfig config;
  GenerationDefaults generation;
  DecoderOptions options;  // what the family derived from the config
};

// Reads and validates the configs only (no weights): what start-up checks
// and capacity planning need.
absl::StatusOr<ModelInfo> LoadModelInfo(const std::string& model_dir);

// Loads the weights for `info` (from LoadModelInfo) and builds the model.
absl::StatusOr<std::unique_ptr<CausalLM>> LoadModel(const std::string& model_dir, const ModelInfo& info,
                                                    const ModelCapacity& capacity, TpInfo tp = {});
// The same from weights already at hand (e.g. RandomWeightStore).
absl::StatusOr<std::unique_ptr<CausalLM>> LoadModelFromStore(const WeightStore& store, const ModelInfo& info,
                                                             const ModelCapacity& capacity, TpInfo tp = {});

}  // namespace kaon
