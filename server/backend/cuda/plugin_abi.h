// The interface between kaon and its optional CUDA backend, a shared library
// (libkaon_cuda.so) loaded with dlopen only when --device asks for a GPU: a
// CPU run never loads the CUDA runtime or cuBLAS, and a build without CUDA
// still runs everywhere. The plugin is only a Backend (server/backend/
// backend.h): kaon's own decoder composes its ops, so the plugin knows no
// model. Both sides are built from this tree by the same compiler; the
// symbol's version suffix changes whenever this struct does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/backend/backend.h"
#include "server/backend/capacity.h"

namespace kaon {

struct CudaBackendOptions {
  std::string dtype = "bfloat16";  // weights and activations: "float32", "bfloat16", "float16"
  int64_t vocab_size = 0;          // logits row width (sizes the sampler)
  int64_t head_dim = 0;            // sizes the RoPE tables (head_dim / 2 frequencies)
  Capacity capacity;               // sizes the step metadata, the sampler and the RoPE tables
};

struct CudaPluginV2 {
  // CUDA devices visible to the process (0 without a device or driver).
  int (*device_count)();
  // Free and total bytes of device 0, for the memory plan.
  absl::Status (*memory_info)(int64_t* free_bytes, int64_t* total_bytes);
  // Device bytes a backend with these options allocates besides weights,
  // activations and the KV cache (GEMM workspace, step metadata, block-table
  // mirror, RoPE tables, sampler scratch and buffers): the memory plan's
  // last term.
  int64_t (*fixed_bytes)(const CudaBackendOptions& options);
  // A backend on device 0.
  absl::StatusOr<std::unique_ptr<Backend>> (*create_backend)(const CudaBackendOptions& options);
};

inline constexpr const char* kCudaPluginFile = "libkaon_cuda.so";
// extern "C" const CudaPluginV2* kaon_cuda_plugin_v2();
inline constexpr const char* kCudaPluginSymbol = "kaon_cuda_plugin_v2";

}  // namespace kaon
