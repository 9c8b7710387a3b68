// The interface between kaon and its optional CUDA backend, a shared library
// (libkaon_cuda.so) loaded with dlopen only when --device asks for a GPU: a
// CPU run never loads the CUDA runtime or cuBLAS, and a build without CUDA
// still runs everywhere. Both sides are built from this tree by the same
// compiler; the symbol's version suffix changes whenever this struct does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "models/registry.h"
#include "server/backend/causal_lm.h"
#include "server/loading/safetensors.h"

namespace kaon {

struct CudaPluginV1 {
  // CUDA devices visible to the process (0 without a device or driver).
  int (*device_count)();
  // The decoder on device 0 with weights and activations in `dtype`
  // ("float32", "bfloat16", "float16").
  absl::StatusOr<std::unique_ptr<CausalLM>> (*load_model)(const std::string& model_dir, const ModelInfo& info,
                                                          const Capacity& capacity, const std::string& dtype);
  // The same from weights in memory (--load-format dummy).
  absl::StatusOr<std::unique_ptr<CausalLM>> (*load_model_from_store)(const WeightStore& store, const ModelInfo& info,
                                                                     const Capacity& capacity,
                                                                     const std::string& dtype);
  // Free and total bytes of device 0, for the memory plan.
  absl::Status (*memory_info)(int64_t* free_bytes, int64_t* total_bytes);
};

inline constexpr const char* kCudaPluginFile = "libkaon_cuda.so";
// extern "C" const CudaPluginV1* kaon_cuda_plugin_v1();
inline constexpr const char* kCudaPluginSymbol = "kaon_cuda_plugin_v1";

}  // namespace kaon
