// The decoder of models/decoder.h on a CUDA device: the same layer
// composition and batch structs, weights and activations in T (float for the
// exact-comparison mode, bfloat16 or float16 for serving) with fp32
// accumulation, the KV cache in device memory. One stream; Forward copies the
// step's metadata in one transfer and synchronises only to return logits.
// Engine thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "models/registry.h"
#include "server/backend/causal_lm.h"

namespace kaon {

// Supported dtype names: "float32", "bfloat16", "float16".
absl::StatusOr<std::unique_ptr<CausalLM>> LoadCudaModel(const std::string& model_dir, const ModelInfo& info,
                                                        const Capacity& capacity, const std::string& dtype);

// The same from weights already at hand (--load-format dummy).
absl::StatusOr<std::unique_ptr<CausalLM>> LoadCudaModelFromStore(const WeightStore& store, const ModelInfo& info,
                                                                 const Capacity& capacity,
                                                                 const std::string& dtype);

// Number of CUDA devices (0 when there is none or no driver).
int CudaDeviceCount();

// Free and total memory of device 0, for the start-up memory plan.
absl::Status CudaMemoryInfo(int64_t* free_bytes, int64_t* total_bytes);

}  // namespace kaon
