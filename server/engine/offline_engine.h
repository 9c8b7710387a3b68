// Offline generation over the paged KV cache, one sequence at a time: what
// `kaon generate` runs. It drives the same model runner, KV cache and
// sampler that the continuous-batching engine will schedule. Not thread-safe:
// one caller at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cpu/sampling.h"
#include "models/registry.h"
#include "server/engine/engine_setup.h"
#include "server/backend/kv_cache.h"
#include "server/engine/model_runner.h"

namespace kaon {

struct GenerateRequest {
  std::vector<int32_t> prompt_ids;
  int64_t max_tokens = 16;
  kernels::cpu::SamplingParams sampling;  // temperature 0 = greedy
  bool ignore_eos = false;
  int64_t keep_logits_steps = 0;  // return the full logits of the first N steps
};

struct GenerateResult {
  std::vector<int32_t> token_ids;
  std::string finish_reason;               // "stop" (an EOS id) or "length"
  std::vector<std::vector<float>> logits;  // first keep_logits_steps steps
};

class OfflineEngine {
 public:
  static absl::StatusOr<std::unique_ptr<OfflineEngine>> Create(const std::string& model_dir,
                                                               const EngineOptions& options);

  const ModelInfo& info() const { return parts_.info; }
  int64_t max_model_len() const { return parts_.runner_config.max_model_len; }
  int64_t num_kv_blocks() const { return allocator_->num_blocks(); }

  absl::StatusOr<GenerateResult> Generate(const GenerateRequest& request);

 private:
  OfflineEngine() = default;
  absl::Status Validate(const GenerateRequest& request) const;
  absl::Status EnsureBlocks(int64_t num_tokens, std::vector<int32_t>* blocks);

  EngineParts parts_;  // info, runner config, model, KV cache memory
  std::unique_ptr<BlockAllocator> allocator_;
  std::unique_ptr<ModelRunner> runner_;
  std::vector<float> sample_scratch_;
};

}  // namespace kaon
