// Start-up memory planning for a device backend, as vLLM does it: of
// total_bytes * gpu_memory_utilization, the weights, the activation
// workspace for a full step and a fixed reserve come off first; the rest
// becomes KV cache blocks. Pure arithmetic, so it is tested on the CPU.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "server/runtime/model_config.h"

namespace kaon {

// Bytes of one element of the activation / KV dtype.
int64_t DTypeBytes(const std::string& dtype);  // "float32" 4, "bfloat16"/"float16" 2; 0 if unknown

// The activation workspace a forward pass needs for `max_tokens` tokens and
// `max_logits` logits rows (the buffers DecoderModel plans), in bytes.
int64_t ActivationBytes(const ModelConfig& config, int64_t max_tokens, int64_t max_logits, int64_t act_bytes);

// K and V of one block over all layers.
int64_t KvBytesPerBlock(const ModelConfig& config, int64_t block_size, int64_t kv_bytes);

struct MemoryPlanInput {
  int64_t total_bytes = 0;          // device memory
  double gpu_memory_utilization = 0.9;
  int64_t weight_bytes = 0;
  int64_t activation_bytes = 0;
  int64_t reserved_bytes = 0;       // library workspaces, graphs, fragmentation
  int64_t bytes_per_block = 0;
  int64_t block_size = 16;
  int64_t max_model_len = 0;        // what the model config allows (or the flag asked)
  bool max_model_len_from_flag = false;
};

struct MemoryPlan {
  int64_t num_blocks = 0;
  int64_t kv_bytes = 0;
  int64_t max_model_len = 0;        // capped by the cache when not set by flag
  std::string summary;              // one line for the start-up log
};

// Errors name the flag to change (--gpu-memory-utilization, --max-model-len).
absl::StatusOr<MemoryPlan> PlanKvCache(const MemoryPlanInput& in);

}  // namespace kaon
