// Loading a Hugging Face model directory: config.json → family (by
// `architectures`) → generation_config.json → safetensors → model.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/decoder.h"
#include "server/backend/backend.h"
#include "server/backend/causal_lm.h"
#include "server/loading/model_config.h"

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

// Loads the weights for `info` (from LoadModelInfo) into `backend` and
// builds the model, which owns the backend from then on.
absl::StatusOr<std::unique_ptr<CausalLM>> LoadModel(const std::string& model_dir, const ModelInfo& info,
                                                    const Capacity& capacity, std::unique_ptr<Backend> backend,
                                                    layers::TpInfo tp = {});
// The same from weights already at hand (e.g. RandomWeightStore).
absl::StatusOr<std::unique_ptr<CausalLM>> LoadModelFromStore(const WeightStore& store, const ModelInfo& info,
                                                             const Capacity& capacity,
                                                             std::unique_ptr<Backend> backend,
                                                             layers::TpInfo tp = {});

// After a model has read its weights from `store`: refuses any tensor it did
// not read, as llama.cpp's converter does (a checkpoint with more layers, or
// another model's tensors, means config.json does not describe it). Tensors
// that Hugging Face checkpoints carry but transformers and vLLM skip on load
// are allowed: rotary_emb.inv_freq / cos_cached / sin_cached buffers, and
// lm_head.weight when the embeddings are tied. The error names the file and
// the tensor. Every loader (CPU and device) calls it.
absl::Status RefuseUnusedTensors(const WeightStore& store, const ModelInfo& info);

}  // namespace kaon
