// Turns one step's sequences into a flattened batch in persistent, max-capacity
// host buffers (token ids, positions, slot mapping, cu_seqlens, seq lens,
// padded block table, logits rows) and runs the model on it. Building a batch
// allocates nothing. Engine thread only.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "server/backend/batch.h"
#include "server/backend/causal_lm.h"
#include "server/backend/kv_cache.h"

namespace kaon {

struct RunnerConfig {
  int64_t max_num_batched_tokens = 2048;
  int64_t max_num_seqs = 256;
  int64_t max_model_len = 0;
  int64_t block_size = 16;
  int64_t max_prompt_logits = 0;  // prompt-logprob rows per step, on top of one per sequence
};

class ModelRunner {
 public:
  ModelRunner(CausalLM& model, KvCache& cache, const RunnerConfig& config);

  // Runs one step. Returns logits, valid until the next Execute: first one
  // row per step with wants_logits (in step order), then every step's
  // prompt-logit rows (in step order, row order).
  absl::StatusOr<std::span<const float>> Execute(std::span<const SequenceStep> steps);

  const RunnerConfig& config() const { return config_; }
  // Forward passes run so far and the tokens they covered (for tests and
  // metrics: one pass per engine step).
  int64_t num_forward_calls() const { return num_forward_calls_; }
  int64_t num_forward_tokens() const { return num_forward_tokens_; }

 private:
  absl::Status BuildBatch(std::span<const SequenceStep> steps);

  CausalLM& model_;
  KvCache& cache_;
  RunnerConfig config_;
  int64_t max_blocks_per_seq_;

  std::vector<int32_t> token_ids_, positions_, query_start_loc_, seq_lens_, block_table_, logits_indices_;
  std::vector<int64_t> slot_mapping_;
  std::vector<float> logits_;
  ForwardBatch batch_;
  int64_t num_forward_calls_ = 0;
  int64_t num_forward_tokens_ = 0;
};

}  // namespace kaon
