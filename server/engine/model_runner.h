// The runner owns the batch: it turns a SchedulerOutput into one flattened
// step in persistent, max-capacity host buffers (token ids, positions, slot
// mapping, cu_seqlens, seq lens, logits rows, the sampling table), runs the
// model and samples behind the backend, and returns the sampled ids.
//
// Block tables persist across steps: each running request holds a batch slot
// (a row of the padded table) from its first step until it finishes, is
// aborted or preempted (SchedulerOutput::freed / preempted), and a step
// writes only the block ids that are new since the last one — so the
// metadata a step writes grows with the number of sequences, not with
// sequences × blocks. Building a step allocates nothing in steady state.
// Engine thread only.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "server/backend/batch.h"
#include "server/backend/capacity.h"
#include "server/backend/causal_lm.h"
#include "server/engine/kv_cache_manager.h"
#include "server/engine/scheduler.h"

namespace kaon {

struct StepOutput {
  // One per scheduled request that samples, in schedule order.
  std::vector<int32_t> sampled;
  std::vector<SampleResult> samples;  // logprobs filled for rows that asked
  // Prompt logprobs computed this step: (index into SchedulerOutput::scheduled, entries in prompt order).
  std::vector<std::pair<size_t, std::vector<SampleResult>>> prompt_logprobs;
};

// Where the last Execute spent its time, in seconds.
struct RunnerTimings {
  double prepare = 0;
  double forward = 0;
  double sample = 0;
};

class ModelRunner {
 public:
  // `eos_ids`: masked while a request is under min_tokens (unless
  // ignore_eos). Ids >= sampleable_vocab (a padded LM head) are never drawn.
  ModelRunner(CausalLM& model, const Capacity& capacity, int32_t sampleable_vocab, std::vector<int32_t> eos_ids);

  // Runs one step. The output is valid until the next Execute. On error the
  // step's requests keep their slots until the scheduler frees them.
  absl::StatusOr<const StepOutput*> Execute(const SchedulerOutput& out, const KvCacheManager& kv);

  const Capacity& capacity() const { return capacity_; }
  const RunnerTimings& timings() const { return timings_; }
  // Forward passes run so far and the tokens they covered (one pass per
  // engine step).
  int64_t num_forward_calls() const { return num_forward_calls_; }
  int64_t num_forward_tokens() const { return num_forward_tokens_; }
  // Bytes of step metadata the last step wrote (what a device backend copies).
  int64_t metadata_bytes() const { return metadata_bytes_; }
  int64_t num_slots_in_use() const { return static_cast<int64_t>(slots_.size()); }

 private:
  struct Slot {
    int32_t row = 0;
    int64_t blocks_written = 0;
  };

  void Release(int64_t request_id);
  absl::Status BuildBatch(const SchedulerOutput& out, const KvCacheManager& kv);
  void BuildSamplingRows(const SchedulerOutput& out);
  absl::Status CollectPromptLogprobs(const SchedulerOutput& out);

  CausalLM& model_;
  Capacity capacity_;
  int32_t sampleable_vocab_;
  std::vector<int32_t> eos_ids_;
  int64_t max_blocks_per_seq_;

  absl::flat_hash_map<int64_t, Slot> slots_;
  std::vector<int32_t> free_rows_;

  std::vector<int32_t> token_ids_, positions_, query_start_loc_, seq_lens_, block_table_, block_table_rows_,
      logits_indices_;
  std::vector<int64_t> slot_mapping_;
  ForwardBatch batch_;
  std::vector<SamplingRow> rows_;
  std::vector<int32_t> banned_;  // the rows' banned ids, back to back
  std::vector<std::pair<size_t, size_t>> banned_ranges_;  // each row's range in banned_
  StepOutput output_;

  RunnerTimings timings_;
  int64_t num_forward_calls_ = 0;
  int64_t num_forward_tokens_ = 0;
  int64_t metadata_bytes_ = 0;
};

}  // namespace kaon
