#include "server/runtime/memory_plan.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace kaon {
namespace {

double GiB(int64_t bytes) { return static_cast<double>(bytes) / (1 << 30); }

}  // namespace

int64_t DTypeBytes(const std::string& dtype) {
  if (dtype == "float32") return 4;
  if (dtype == "bfloat16" || dtype == "float16") return 2;
  return 0;
}

int64_t ActivationBytes(const ModelConfig& c, int64_t max_tokens, int64_t max_logits, int64_t act_bytes) {
  const int64_t qkv = (c.num_heads + 2 * c.num_kv_heads) * c.head_dim;
  const int64_t per_token = 2 * c.hidden_size            // hidden + residual
                            + qkv                        // fused q|k|v
                            + c.num_heads * c.head_dim   // attention output
                            + 3 * c.intermediate_size;   // gate|up and the activation
  // Logits stay fp32 whatever the activation dtype.
  return max_tokens * per_token * act_bytes + max_logits * (c.hidden_size * act_bytes + c.vocab_size * 4);
}

int64_t KvBytesPerBlock(const ModelConfig& c, int64_t block_size, int64_t kv_bytes) {
  return 2 * c.num_layers * block_size * c.num_kv_heads * c.head_dim * kv_bytes;
}

absl::StatusOr<MemoryPlan> PlanKvCache(const MemoryPlanInput& in) {
  if (!(in.gpu_memory_utilization > 0.0 && in.gpu_memory_utilization <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--gpu-memory-utilization must be in (0, 1], got %g", in.gpu_memory_utilization));
  }
  if (in.total_bytes <= 0 || in.bytes_per_block <= 0 || in.block_size <= 0 || in.max_model_len <= 0) {
    return absl::InvalidArgumentError("memory plan: sizes must be positive");
  }
  const int64_t budget = static_cast<int64_t>(std::floor(static_cast<double>(in.total_bytes) *
                                                         in.gpu_memory_utilization));
  const int64_t fixed = in.weight_bytes + in.activation_bytes + in.reserved_bytes;
  const int64_t kv_budget = budget - fixed;
  const int64_t blocks_per_seq = (in.max_model_len + in.block_size - 1) / in.block_size;
  MemoryPlan plan;
  plan.num_blocks = kv_budget > 0 ? kv_budget / in.bytes_per_block : 0;
  if (plan.num_blocks < 1) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "no memory left for the KV cache: %.2f GiB usable (--gpu-memory-utilization %g of %.2f GiB) but weights "
        "take %.2f GiB and activations %.2f GiB; raise --gpu-memory-utilization or lower "
        "--max-num-batched-tokens",
        GiB(budget), in.gpu_memory_utilization, GiB(in.total_bytes), GiB(in.weight_bytes),
        GiB(in.activation_bytes + in.reserved_bytes)));
  }
  plan.kv_bytes = plan.num_blocks * in.bytes_per_block;
  const int64_t cache_tokens = plan.num_blocks * in.block_size;
  if (plan.num_blocks < blocks_per_seq) {
    if (in.max_model_len_from_flag) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "--max-model-len %d needs %d KV blocks but only %d fit (%.2f GiB); lower --max-model-len or raise "
          "--gpu-memory-utilization",
          in.max_model_len, blocks_per_seq, plan.num_blocks, GiB(plan.kv_bytes)));
    }
    plan.max_model_len = cache_tokens;
  } else {
    plan.max_model_len = in.max_model_len;
  }
  plan.summary = absl::StrFormat(
      "memory: %.2f GiB usable of %.2f GiB; weights %.2f GiB, activations %.2f GiB, reserve %.2f GiB, KV cache "
      "%.2f GiB = %d blocks of %d tokens (%d tokens, max_model_len %d)",
      GiB(budget), GiB(in.total_bytes), GiB(in.weight_bytes), GiB(in.activation_bytes), GiB(in.reserved_bytes),
      GiB(plan.kv_bytes), plan.num_blocks, in.block_size, cache_tokens, plan.max_model_len);
  return plan;
}

}  // namespace kaon
