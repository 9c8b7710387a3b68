// --device and --dtype: which backend runs the model. "cpu" is built in;
// "cuda" loads libkaon_cuda.so (server/backend/cuda/plugin_abi.h) from the kaon
// binary's directory (or ../lib); "auto" takes the GPU when the plugin loads
// and sees a device, else the CPU.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "server/engine/engine_setup.h"

namespace kaon {

struct DeviceChoice {
  std::string device;  // "cpu" or "cuda"
  std::string dtype;   // what the backend computes in
  std::string reason;  // for "auto": why this device, for the start-up log
  // CUDA: free and total device memory, for the KV cache plan.
  std::function<absl::Status(int64_t* free_bytes, int64_t* total_bytes)> memory_info;
  // CUDA: the device bytes its backend allocates besides weights,
  // activations and KV cache, for the same plan.
  std::function<int64_t(const ModelInfo& info, const Capacity& capacity)> fixed_bytes;
};

// Resolves options->device / options->dtype and, for CUDA, installs the
// plugin's loader as options->model_loader. Errors name the flag.
absl::StatusOr<DeviceChoice> ConfigureDevice(EngineOptions* options);

}  // namespace kaon
