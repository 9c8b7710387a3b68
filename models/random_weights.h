// The random-weight recipe of tests/data/models/README.md, for any
// Llama-family config: every tensor the decoder loader expects, drawn as
// N(0, 1) · std (norm weights 1 + 0.1 · N(0, 1)).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "models/registry.h"
#include "absl/status/statusor.h"
#include "server/loading/safetensors.h"
#include "server/loading/safetensors_writer.h"

namespace kaon {

// Stds: embed_tokens / lm_head 0.1, q/k/v/o 0.25, gate/up/down 0.2, biases
// 0.5, as the fixtures. Projection stds are multiplied by
// min(1, sqrt(64 / hidden_size)): the fixtures are 64 wide and a projection's
// output variance grows with its input width, so the factor keeps a 768-wide
// model's projection outputs near the fixtures' scale instead of 12x their
// variance. Embeddings, the head and norms are not scaled.
//
// Each tensor is drawn in 256k-element chunks, each from its own
// std::mt19937_64 seeded by (seed, tensor name, chunk index) and turned into
// normals by Box-Muller, so the values do not depend on tensor order or
// thread count, and chunks fill in parallel. (The fixtures themselves came
// from numpy; these draws are not bit-equal to them.)
std::vector<TensorToWrite> RandomModelTensors(const ModelInfo& info, uint64_t seed, DType dtype);

// The same tensors, generated in memory (--load-format dummy): loading them
// gives the same model as `kaon random-model` with this seed and dtype.
absl::StatusOr<std::unique_ptr<WeightStore>> RandomWeightStore(const ModelInfo& info, uint64_t seed, DType dtype);

}  // namespace kaon
