// The decoder of models/decoder.h on a CUDA device: the same layer
// composition and batch structs, weights and activations in T (float for the
// exact-comparison mode, bfloat16 or float16 for serving) with fp32
// accumulation, the KV cache in device memory. One stream; Forward copies the
// step's metadata in one transfer and synchronises only to return logits.
// Engine thread only.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "models/registry.h"
#include "server/runtime/causal_lm.h"

namespace kaon {

// Supported dtype names: "float32", "bfloat16", "float16".
absl::StatusOr<std::unique_ptr<CausalLM>> LoadCudaModel(const std::string& model_dir, const ModelInfo& info,
                                                        const ModelCapacity& capacity, const std::string& dtype);

// Number of CUDA devices (0 when there is none or no driver).
int CudaDeviceCount();

}  // namespace kaon
