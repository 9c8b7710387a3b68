// The runner owns the batch: it turns a SchedulerOutput (plain data) into one
// flattened step in persistent, max-capacity host buffers (token ids,
// positions, slot mapping, cu_seqlens, seq lens, logits rows, the sampling
// table), runs the model and samples behind the backend, and returns the
// sampled ids.
//
// It keeps its own state per request, built from the scheduler's deltas:
// NewRequestData when a request first runs (or resumes after preemption),
// then only new block ids and counts. Each running request holds a batch
// slot (a row of the padded block table) until it finishes, is aborted or
// preempted (SchedulerOutput::freed / preempted); a step writes only the
// block ids that are new — so the metadata a step writes grows with the
// number of sequences, not with sequences × blocks. The runner appends the
// ids it samples to its own copy of each request's tokens.
//
// Contract for overlapping steps: Execute(N + 1) reads only its
// SchedulerOutput and the runner's state — never the scheduler's Update of
// step N — so a device backend can keep step N's sampled ids on the device,
// feed them to step N + 1 and launch it before N's ids reach the host.
// (Today's backends return the ids at once; the engine still updates
// before scheduling again.) Building a step allocates nothing in steady state
// beyond a new request's state. Engine thread only.
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
  absl::StatusOr<const StepOutput*> Execute(const SchedulerOutput& out);

  const Capacity& capacity() const { return capacity_; }
  const RunnerTimings& timings() const { return timings_; }
  // Forward passes run so far and the tokens they covered (one pass per
  // engine step).
  int64_t num_forward_calls() const { return num_forward_calls_; }
  int64_t num_forward_tokens() const { return num_forward_tokens_; }
  // Bytes of step metadata the last step wrote (what a device backend copies).
  int64_t metadata_bytes() const { return metadata_bytes_; }
  int64_t device_to_host_bytes() const { return model_.device_to_host_bytes(); }
  int64_t num_slots_in_use() const { return static_cast<int64_t>(slots_.size()); }

 private:
  // One running request as the runner knows it.
  struct Slot {
    int32_t row = 0;                // of the block table
    int64_t num_blocks = 0;         // block ids written to the row
    std::vector<int32_t> tokens;    // prompt, then outputs (the sampled ids appended here)
    int64_t num_prompt_tokens = 0;
    SamplingParams params;
    uint64_t seed = 0;
    int32_t sample_index = 0;
    int64_t num_prompt_logprobs = 0;  // prompt-logprob entries produced so far
  };

  void Release(int64_t request_id);
  absl::Status AddNewRequests(const SchedulerOutput& out);
  absl::Status BuildBatch(const SchedulerOutput& out);
  void BuildSamplingRows(const SchedulerOutput& out);
  void AppendSampled(const SchedulerOutput& out);
  absl::Status CollectPromptLogprobs(const SchedulerOutput& out);

  CausalLM& model_;
  Capacity capacity_;
  int32_t sampleable_vocab_;
  std::vector<int32_t> eos_ids_;
  int64_t max_blocks_per_seq_;

  absl::flat_hash_map<int64_t, Slot> slots_;
  std::vector<Slot*> step_slots_;  // the scheduled requests' slots, in schedule order
  std::vector<int32_t> free_rows_;

  std::vector<int32_t> token_ids_, positions_, query_start_loc_, seq_lens_, block_table_, block_table_rows_,
      logits_indices_;
  std::vector<int64_t> slot_mapping_;
  std::vector<int32_t> block_table_updates_;  // this step's (flat index, block id) pairs
  bool table_resync_ = true;  // the next batch says "whole table" (num_block_table_updates -1)
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
