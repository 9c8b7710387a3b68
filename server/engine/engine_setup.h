// Start-up shared by the engines: validate the options against the model,
// size the KV cache, load the weights and build the runner's pieces.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "models/registry.h"
#include "server/backend/capacity.h"
#include "server/backend/causal_lm.h"
#include "server/backend/memory_plan.h"

namespace kaon {

struct EngineOptions {
  int64_t max_model_len = 0;             // 0: the config's context, capped by the KV cache
  int64_t max_num_batched_tokens = 2048;
  int64_t max_num_seqs = 256;
  int64_t block_size = 16;
  int64_t num_kv_blocks = 0;             // 0: sized automatically
  int num_threads = 0;                   // 0: hardware concurrency
  // The CPU kernels' instruction set: auto (the best cpuid reports) or a
  // forced path (kernels/cpu/cpu_isa.h); one the CPU lacks is refused.
  std::string cpu_isa = "auto";
  // --load-format dummy: random weights of the config's shapes, generated in
  // memory (no safetensors needed), for benchmarks and tests.
  bool dummy_weights = false;
  std::string device = "cpu";  // cpu | cuda | auto (see server/engine/device.h)
  std::string dtype = "auto";  // auto | float32 | bfloat16 | float16
  // On a device without --num-kv-blocks: the share of its memory kaon plans
  // for (weights + activations + KV cache), as vLLM's flag.
  double gpu_memory_utilization = 0.9;
  // Only 1 yet: the layers shard at load (server/backend/cpu/linear.h), but serving over
  // several GPUs is not built; other values are refused at start-up.
  int tensor_parallel_size = 1;
  // The host memory start-up compares the model's needs with (weights, KV
  // cache and workspaces on the CPU; generated weights with --load-format
  // dummy on a device); unset: ReadHostMemory(), this process's cgroup limit
  // or MemAvailable. Tests fake a small machine here.
  HostMemorySource host_memory;
  // Builds the model in place of the CPU loader (the GPU check passes the
  // CUDA backend's); unset = the CPU backend.
  std::function<absl::StatusOr<std::unique_ptr<CausalLM>>(const std::string& model_dir, const ModelInfo& info,
                                                          const Capacity& capacity)>
      model_loader;
};

// Checks option values and their consistency with the model; errors name the flag.
absl::Status ValidateEngineOptions(const EngineOptions& options, const ModelConfig& config);

struct EngineParts {
  ModelInfo info;
  std::string device;  // what runs the model: "cpu" or "cuda", and its dtype
  std::string dtype;
  std::string device_reason;  // --device auto: why
  std::string memory_summary;  // the device memory plan, one line (empty on the CPU)
  Capacity capacity;  // what every component plans for
  std::unique_ptr<CausalLM> model;
};

absl::StatusOr<EngineParts> LoadEngineParts(const std::string& model_dir, const EngineOptions& options);

// What the CPU backend will allocate for this model and capacity, by part
// (its allocation counter must agree: tests/engine/cpu_memory_plan_test.cc).
struct BackendPlan {
  int64_t weights = 0;
  int64_t kv_cache = 0;
  int64_t workspace = 0;  // activations, RoPE tables, the backend's scratch and buffers
  int64_t total() const { return weights + kv_cache + workspace; }
};
BackendPlan PlanCpuBackend(const ModelInfo& info, const Capacity& capacity, int num_threads,
                           bool bf16_weights = false);
// The same for a device backend computing in `dtype`, whose own buffers
// (workspaces, metadata, sampler) come to `fixed_bytes` (the CUDA plugin's
// fixed_bytes); tests/gpu_model holds the CUDA counter to it.
BackendPlan PlanDeviceBackend(const ModelInfo& info, const Capacity& capacity, const std::string& dtype,
                              int64_t fixed_bytes);

// The model on a new CPU backend (what LoadEngineParts builds without a
// model_loader; tests wrap it). `store` null: read the checkpoint in model_dir.
absl::StatusOr<std::unique_ptr<CausalLM>> LoadCpuModel(const std::string& model_dir, const ModelInfo& info,
                                                       const Capacity& capacity, int num_threads = 0,
                                                       const WeightStore* store = nullptr,
                                                       const std::string& cpu_isa = "auto",
                                                       bool bf16_weights = false);

// The KV cache a device gets (server/backend/memory_plan.h) for this model
// and these options, given the device's free and total bytes; `dtype` is
// what weights, activations and KV are held in; `fixed_bytes` is what the
// backend allocates besides them. Errors name the flag.
absl::StatusOr<MemoryPlan> PlanDeviceKvCache(const ModelInfo& info, const EngineOptions& options,
                                             const std::string& dtype, int64_t free_bytes, int64_t total_bytes,
                                             int64_t max_logits, int64_t fixed_bytes = 0);

}  // namespace kaon
