// Start-up memory planning. For a device backend, as vLLM does it: of
// total_bytes * gpu_memory_utilization, the weights, the activation
// workspace for a full step and a fixed reserve come off first; the rest
// becomes KV cache blocks. For the host (the CPU backend, or weights staged
// on the host): what the model will need compared with what this process may
// use, before anything is allocated. All byte counts saturate at INT64_MAX
// instead of overflowing, so absurd (but range-checked) sizes compare as
// "too large" rather than wrapping. Pure arithmetic apart from
// ReadHostMemory, so it is tested on the CPU.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/loading/model_config.h"

namespace kaon {

// Saturating arithmetic for non-negative byte and element counts.
int64_t SatMul(int64_t a, int64_t b);
int64_t SatAdd(int64_t a, int64_t b);

// "1.50 GiB", "12.0 MiB", "512 B": for start-up messages.
std::string FormatBytes(int64_t bytes);

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

// Memory this process may use on the host.
struct HostMemory {
  int64_t available_bytes = 0;
  // Where the figure comes from, for messages: "MemAvailable" or "cgroup
  // memory.max (/sys/fs/cgroup/…/memory.max)".
  std::string source;
};

// The smaller of MemAvailable (`proc_dir`/meminfo) and the memory limit of
// this process's cgroup and its ancestors (v2 memory.max, "max" meaning
// none; v1 memory.limit_in_bytes), found through `proc_dir`/self/cgroup
// under `cgroup_root`. The directories are parameters so tests can fake them.
absl::StatusOr<HostMemory> ReadHostMemory(const std::string& proc_dir = "/proc",
                                          const std::string& cgroup_root = "/sys/fs/cgroup");

// Where the engine gets the host figure from (EngineOptions::host_memory);
// unset means ReadHostMemory().
using HostMemorySource = std::function<absl::StatusOr<HostMemory>()>;

// What the host must hold, each part with the words that say what drives it
// (e.g. "fp32; hidden_size 4096, ...").
struct HostMemoryNeed {
  struct Part {
    const char* what;  // "weights", "KV cache", "activations and tables"
    int64_t bytes = 0;
    std::string why;
  };
  std::vector<Part> parts;
};

// ResourceExhausted, one line, when the parts do not fit `available`:
// "`prefix`: the model needs 1.20 TiB for weights (…) and 3.00 GiB for KV
// cache (…) but only 20.0 GiB are available (MemAvailable)", then `hint`.
absl::Status CheckHostMemory(const HostMemoryNeed& need, const HostMemory& available, const std::string& prefix,
                             const std::string& hint);

}  // namespace kaon
