#include "server/engine/device.h"

#include "absl/strings/str_cat.h"
#include "models/random_weights.h"
#include "models/registry.h"
#include "server/backend/cuda_plugin.h"
#include "server/common/status.h"

namespace kaon {
namespace {

CudaBackendOptions CudaOptions(const ModelInfo& info, const Capacity& capacity, const std::string& dtype) {
  CudaBackendOptions o;
  o.dtype = dtype;
  o.vocab_size = info.config.vocab_size;
  o.head_dim = info.config.head_dim;
  o.capacity = capacity;
  return o;
}

}  // namespace

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
    const CudaPluginV2* plugin = LoadCudaPlugin(&why_not);
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
      choice.fixed_bytes = [plugin, dt = choice.dtype](const ModelInfo& info, const Capacity& capacity) {
        return plugin->fixed_bytes(CudaOptions(info, capacity, dt));
      };
      // kaon's own decoder over the plugin's backend: the plugin knows no model.
      options->model_loader = [plugin, dt = choice.dtype, dummy = options->dummy_weights](
                                  const std::string& dir, const ModelInfo& info,
                                  const Capacity& capacity) -> absl::StatusOr<std::unique_ptr<CausalLM>> {
        KAON_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend,
                              plugin->create_backend(CudaOptions(info, capacity, dt)));
        if (!dummy) return LoadModel(dir, info, capacity, std::move(backend));
        // Random weights made on the host in (close to) the compute dtype.
        const DType host = dt == "float32" ? DType::kF32 : DType::kBF16;
        KAON_ASSIGN_OR_RETURN(std::unique_ptr<WeightStore> store, RandomWeightStore(info, 0, host));
        return LoadModelFromStore(*store, info, capacity, std::move(backend));
      };
      return choice;
    }
  }
  if (dtype == "float16") {
    return absl::InvalidArgumentError(
        "--dtype float16: the CPU backend holds weights in float32 or bfloat16 (use --device cuda for float16)");
  }
  choice.device = "cpu";
  // auto stays float32 on the CPU: bf16 weights round the checkpoint, a
  // choice the user makes.
  choice.dtype = dtype == "bfloat16" ? "bfloat16" : "float32";
  return choice;
}

}  // namespace kaon
