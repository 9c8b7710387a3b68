#include "server/engine/device.h"

#include "absl/strings/str_cat.h"
#include "models/random_weights.h"
#include "server/backend/cuda_plugin.h"

namespace kaon {

absl::StatusOr<DeviceChoice> ConfigureDevice(EngineOptions* options) {
  const std::string& device = options->device;
  const std::string& dtype = options->dtype;
  if (device != "cpu" && device != "cuda" && device != "auto") {
    return absl::InvalidArgumentError(absl::StrCat("--device must be cpu, cuda or auto, got \"", device, "\""));
  }
  if (dtype != "auto" && dtype != "float32" && dtype != "bfloat16" && dtype != "float16") {
    return absl::InvalidArgumentError(
        absl::StrCat("--dtype must be auto, float32, bfloat16 or float16, got \"", dtype, "\""));
  }
  DeviceChoice choice;
  if (device != "cpu") {
    std::string why_not;
    const CudaPluginV1* plugin = LoadCudaPlugin(&why_not);
    if (plugin != nullptr && plugin->device_count() == 0) {
      why_not = "no CUDA device is visible (no GPU, or no driver)";
      plugin = nullptr;
    }
    if (plugin == nullptr) {
      if (device == "cuda") return absl::FailedPreconditionError(absl::StrCat("--device cuda: ", why_not));
      choice.reason = why_not;
    } else {
      choice.device = "cuda";
      choice.dtype = dtype == "auto" ? "bfloat16" : dtype;
      choice.memory_info = plugin->memory_info;
      if (options->dummy_weights) {
        // Random weights made on the host in (close to) the compute dtype.
        const DType host = choice.dtype == "float32" ? DType::kF32 : DType::kBF16;
        options->model_loader = [plugin, dt = choice.dtype, host](const std::string&, const ModelInfo& info,
                                                                  const Capacity& capacity)
            -> absl::StatusOr<std::unique_ptr<CausalLM>> {
          absl::StatusOr<std::unique_ptr<WeightStore>> store = RandomWeightStore(info, 0, host);
          if (!store.ok()) return store.status();
          return plugin->load_model_from_store(**store, info, capacity, dt);
        };
      } else {
        options->model_loader = [plugin, dt = choice.dtype](const std::string& dir, const ModelInfo& info,
                                                            const Capacity& capacity) {
          return plugin->load_model(dir, info, capacity, dt);
        };
      }
      return choice;
    }
  }
  if (dtype != "auto" && dtype != "float32") {
    return absl::InvalidArgumentError(
        absl::StrCat("--dtype ", dtype, ": the CPU backend computes in float32 (use --device cuda for ", dtype, ")"));
  }
  choice.device = "cpu";
  choice.dtype = "float32";
  return choice;
}

}  // namespace kaon
