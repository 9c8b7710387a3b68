// vLLM-v1-style scheduler: pure host bookkeeping, no model, no device. Every
// step hands out a token budget (max_num_batched_tokens, max_num_seqs) to
// running requests first, then admits waiting ones; chunked prefill,
// prefix-cache hits and decode all fall out of "compute num_tokens -
// num_computed_tokens more tokens". When blocks run out the lowest-priority
// running request is preempted (recompute). Engine thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "server/engine/kv_cache_manager.h"
#include "server/engine/request.h"

namespace kaon {

enum class SchedulingPolicy { kFcfs, kPriority };

struct SchedulerConfig {
  int64_t max_num_batched_tokens = 2048;
  int64_t max_num_seqs = 256;
  int64_t max_model_len = 0;
  int64_t max_num_queued_requests = 0;  // 0 = unbounded
  // Prompt tokens of prompt-logprob requests computed per step (each needs a
  // logits row); 0 = unbounded.
  int64_t max_prompt_logprob_tokens = 0;
  SchedulingPolicy policy = SchedulingPolicy::kFcfs;
};

// A step as plain data, as vLLM v1's NewRequestData / CachedRequestData: ids,
// counts, token and block ids, copied parameters — no pointers into engine
// state, so it could be broadcast to other ranks. The model runner keeps
// its own state per request, built from these deltas.

// A request the runner has not seen since it was admitted or resumed after
// preemption: everything needed to run it.
struct NewRequestData {
  int64_t id = 0;
  std::vector<int32_t> token_ids;  // prompt, then the outputs so far (a resumed request)
  int64_t num_prompt_tokens = 0;
  SamplingParams params;
  uint64_t seed = 0;
  int32_t sample_index = 0;
  int64_t num_prompt_logprobs = 0;  // prompt-logprob entries produced before (kept across preemption)
};

// One request's share of a step.
struct ScheduledRequest {
  int64_t id = 0;
  int64_t num_computed_tokens = 0;  // before this step
  int64_t num_new_tokens = 0;       // computed this step, from num_computed_tokens on
  bool samples = false;             // the chunk reaches the last known token: its last row gives logits
  // The request's KV block ids the runner has not been sent yet (all of them
  // for a new request): SchedulerOutput::block_ids[block_ids_begin, block_ids_end).
  int64_t block_ids_begin = 0;
  int64_t block_ids_end = 0;
};

struct SchedulerOutput {
  std::vector<ScheduledRequest> scheduled;
  std::vector<NewRequestData> new_requests;  // those of `scheduled` the runner has not seen
  std::vector<int32_t> block_ids;            // the scheduled requests' new block ids, back to back
  int64_t num_scheduled_tokens = 0;
  std::vector<int64_t> preempted;  // ids preempted during this step
  // Ids that finished or were aborted since the previous step: the runner
  // releases their batch slots.
  std::vector<int64_t> freed;
  bool empty() const { return scheduled.empty(); }
};

// What the engine reports back for one scheduled request that sampled.
struct SampledToken {
  int32_t token;
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, KvCacheManager* kv);

  // Queues a validated request (a prompt, prompt + max_tokens within
  // max_model_len: Internal if not) after checking what only the scheduler
  // knows: InvalidArgument when it can never fit the whole KV cache,
  // ResourceExhausted when the queue is full.
  absl::Status Add(std::unique_ptr<Request> request);

  SchedulerOutput Schedule();

  // Advances every scheduled request by its tokens and appends the sampled
  // token of those that sampled (`sampled[i]` for the i-th sampling entry of
  // `out.scheduled`, in order). Returns requests that finished this step
  // (length / EOS / stop ids); they are already freed.
  std::vector<std::unique_ptr<Request>> Update(const SchedulerOutput& out, std::span<const int32_t> sampled);

  // Removes a request wherever it is and frees its blocks; null if unknown.
  std::unique_ptr<Request> Abort(int64_t id);

  // The request with this id while the scheduler holds it; null otherwise.
  Request* Find(int64_t id) const;

  void set_eos_ids(std::vector<int32_t> ids) { eos_ids_ = std::move(ids); }

  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  int64_t num_waiting() const { return static_cast<int64_t>(waiting_.size()); }
  bool has_work() const { return !running_.empty() || !waiting_.empty(); }
  const SchedulerConfig& config() const { return config_; }

 private:
  // Picks the next waiting request (FCFS: front; priority: lowest value),
  // skipping n > 1 choices whose first sibling has not computed the prompt;
  // end() if none can go.
  std::deque<Request*>::iterator NextWaiting();
  bool WaitsForFirstSibling(const Request* r) const;
  // The running request to preempt: the latest arrival (FCFS) or the largest
  // priority value, latest arrival among equals.
  size_t PreemptionVictim() const;
  void Preempt(size_t running_index, SchedulerOutput* out);
  // Appends r's share of the step: its block ids not yet sent and, the first
  // time the runner sees it, its NewRequestData.
  void Emit(Request* r, int64_t num_new, SchedulerOutput* out);
  bool CheckFinished(Request* r, int32_t token);
  // Shrinks num_new so the request's prompt-logit rows fit `*budget` (and
  // charges them); 0 when none fit.
  int64_t FitPromptLogits(const Request* r, int64_t num_new, int64_t* budget) const;

  SchedulerConfig config_;
  KvCacheManager* kv_;
  std::vector<int32_t> eos_ids_;
  absl::flat_hash_map<int64_t, std::unique_ptr<Request>> requests_;
  std::vector<Request*> running_;
  std::deque<Request*> waiting_;
  std::vector<int64_t> freed_;  // for the next SchedulerOutput::freed
};

}  // namespace kaon
