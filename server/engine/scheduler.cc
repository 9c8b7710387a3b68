#include "server/engine/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/common/status.h"

namespace kaon {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
    case FinishReason::kNone:
      break;
  }
  return "";
}

Scheduler::Scheduler(const SchedulerConfig& config, KvCacheManager* kv) : config_(config), kv_(kv) {
  KAON_CHECK(config.max_num_batched_tokens > 0 && config.max_num_seqs > 0 && config.max_model_len > 0)
      << "invalid scheduler config";
}

absl::Status Scheduler::Add(std::unique_ptr<Request> r) {
  const int64_t prompt = r->num_prompt_tokens;
  // The prompt and context rules are the API's (server/api/request_rules.h);
  // a request that breaks them here is the caller's bug.
  if (prompt <= 0 || prompt != r->num_tokens() || r->params.max_tokens < 1 ||
      r->params.max_tokens > config_.max_model_len - prompt) {
    return absl::InternalError(absl::StrCat("scheduler: request ", r->id, " exceeds max_model_len ",
                                            config_.max_model_len, " (not validated)"));
  }
  const int64_t total = prompt + r->params.max_tokens;
  if (!kv_->CanEverFit(total)) {
    return absl::InvalidArgumentError(absl::StrCat("the request needs ", total,
                                                   " tokens of KV cache, more than the whole cache holds (",
                                                   kv_->num_blocks() * kv_->block_size(), ")"));
  }
  if (config_.max_num_queued_requests > 0 && num_waiting() >= config_.max_num_queued_requests) {
    return absl::ResourceExhaustedError(absl::StrCat("the request queue is full (", config_.max_num_queued_requests,
                                                     " waiting requests); retry later"));
  }
  if (requests_.contains(r->id)) return absl::AlreadyExistsError(absl::StrCat("request id ", r->id, " is in use"));
  r->status = RequestStatus::kWaiting;
  Request* raw = r.get();
  requests_.emplace(r->id, std::move(r));
  waiting_.push_back(raw);
  return absl::OkStatus();
}

bool Scheduler::WaitsForFirstSibling(const Request* r) const {
  // Choices 1..n-1 of a request share its prompt: admitting them only once
  // choice 0 has computed it lets them take its blocks from the prefix cache
  // instead of computing the same prompt n times.
  if (r->sample_index == 0 || r->params.prompt_logprobs >= 0 || !kv_->prefix_caching_enabled()) return false;
  auto it = requests_.find(r->first_sibling_id);
  if (it == requests_.end()) return false;  // finished or aborted: nothing to wait for
  const Request* first = it->second.get();
  return first->sample_index == 0 && first->num_computed_tokens < first->num_prompt_tokens;
}

std::deque<Request*>::iterator Scheduler::NextWaiting() {
  auto eligible = [&](const Request* r) { return !WaitsForFirstSibling(r); };
  if (config_.policy == SchedulingPolicy::kFcfs) return std::find_if(waiting_.begin(), waiting_.end(), eligible);
  auto best = waiting_.end();
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if (!eligible(*it)) continue;
    if (best == waiting_.end() || (*it)->priority < (*best)->priority ||
        ((*it)->priority == (*best)->priority && (*it)->arrival < (*best)->arrival)) {
      best = it;
    }
  }
  return best;
}

size_t Scheduler::PreemptionVictim() const {
  if (config_.policy == SchedulingPolicy::kFcfs) return running_.size() - 1;
  size_t best = 0;
  for (size_t i = 1; i < running_.size(); ++i) {
    const Request* a = running_[i];
    const Request* b = running_[best];
    if (a->priority > b->priority || (a->priority == b->priority && a->arrival > b->arrival)) best = i;
  }
  return best;
}

void Scheduler::Preempt(size_t index, SchedulerOutput* out) {
  Request* r = running_[index];
  running_.erase(running_.begin() + static_cast<ptrdiff_t>(index));
  // A victim already given tokens this step gives them back.
  // (Victims are running requests, which the runner already knows: no
  // NewRequestData to take back; their block ids stay unread in block_ids.)
  auto it = std::find_if(out->scheduled.begin(), out->scheduled.end(),
                         [r](const ScheduledRequest& s) { return s.id == r->id; });
  if (it != out->scheduled.end()) {
    out->num_scheduled_tokens -= it->num_new_tokens;
    out->scheduled.erase(it);
  }
  kv_->Free(r->id);
  r->in_runner = false;
  r->num_blocks_sent = 0;
  r->status = RequestStatus::kPreempted;
  r->num_computed_tokens = 0;  // recompute: its outputs become part of the next prefill
  ++r->num_preemptions;
  waiting_.push_front(r);
  out->preempted.push_back(r->id);
}

int64_t Scheduler::FitPromptLogits(const Request* r, int64_t num_new, int64_t* budget) const {
  if (config_.max_prompt_logprob_tokens <= 0) return num_new;
  const int64_t from = r->num_computed_tokens;
  const int64_t rows = r->PromptLogitRows(from, from + num_new);
  if (rows <= *budget) {
    *budget -= rows;
    return num_new;
  }
  if (*budget == 0) return 0;
  // Rows run contiguously from max(from, done); stop the chunk after the
  // last row that fits.
  const int64_t first_row = std::max<int64_t>(from, static_cast<int64_t>(r->prompt_logprobs.size()));
  const int64_t fitted = first_row + *budget - from;
  *budget = 0;
  return fitted;
}

void Scheduler::Emit(Request* r, int64_t num_new, SchedulerOutput* out) {
  ScheduledRequest s;
  s.id = r->id;
  s.num_computed_tokens = r->num_computed_tokens;
  s.num_new_tokens = num_new;
  s.samples = r->num_computed_tokens + num_new == r->num_tokens();
  const std::span<const int32_t> blocks = kv_->Blocks(r->id);
  s.block_ids_begin = static_cast<int64_t>(out->block_ids.size());
  out->block_ids.insert(out->block_ids.end(), blocks.begin() + r->num_blocks_sent, blocks.end());
  s.block_ids_end = static_cast<int64_t>(out->block_ids.size());
  r->num_blocks_sent = static_cast<int64_t>(blocks.size());
  if (!r->in_runner) {
    NewRequestData& n = out->new_requests.emplace_back();
    n.id = r->id;
    n.token_ids = r->tokens;
    n.num_prompt_tokens = r->num_prompt_tokens;
    n.params = r->params;
    n.seed = r->seed;
    n.sample_index = r->sample_index;
    n.num_prompt_logprobs = static_cast<int64_t>(r->prompt_logprobs.size());
    r->in_runner = true;
  }
  out->scheduled.push_back(s);
  out->num_scheduled_tokens += num_new;
}

Request* Scheduler::Find(int64_t id) const {
  auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : it->second.get();
}

SchedulerOutput Scheduler::Schedule() {
  SchedulerOutput out;
  out.freed.swap(freed_);
  int64_t budget = config_.max_num_batched_tokens;
  int64_t prompt_logits_budget = config_.max_prompt_logprob_tokens;

  // Running requests first, in order; each needs num_tokens - num_computed.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Request* r = running_[i];
    const int64_t num_new =
        FitPromptLogits(r, std::min(r->num_tokens() - r->num_computed_tokens, budget), &prompt_logits_budget);
    if (num_new == 0) {
      ++i;
      continue;
    }
    bool scheduled = true;
    while (!kv_->Allocate(r->id, r->num_computed_tokens + num_new)) {
      const size_t victim = PreemptionVictim();
      const bool self = running_[victim] == r;
      Preempt(victim, &out);
      if (self) {
        scheduled = false;
        break;
      }
      if (victim < i) --i;  // an earlier (already scheduled) request left
    }
    if (!scheduled) continue;  // r itself was preempted; index i now holds the next one
    Emit(r, num_new, &out);
    budget -= num_new;
    ++i;
  }

  // Then waiting ones, unless this step had to preempt (memory is tight).
  while (out.preempted.empty() && !waiting_.empty() && budget > 0 &&
         num_running() < config_.max_num_seqs) {
    auto it = NextWaiting();
    if (it == waiting_.end()) break;  // only choices waiting for their first sibling
    Request* r = *it;
    KvCacheManager::PrefixHit hit;
    // Cached tokens have no logits, so prompt-logprob requests compute all.
    if (r->params.prompt_logprobs < 0) hit = kv_->FindCachedPrefix(r->tokens);
    // FitPromptLogits reads num_computed_tokens, which is the hit for a new request.
    r->num_computed_tokens = hit.num_tokens;
    int64_t logits_budget = prompt_logits_budget;
    const int64_t num_new = FitPromptLogits(r, std::min(r->num_tokens() - hit.num_tokens, budget), &logits_budget);
    if (num_new == 0 || !kv_->Allocate(r->id, hit.num_tokens + num_new, &hit)) {
      r->num_computed_tokens = 0;
      break;
    }
    prompt_logits_budget = logits_budget;
    waiting_.erase(it);
    r->num_computed_tokens = hit.num_tokens;
    if (r->num_cached_tokens < 0) r->num_cached_tokens = hit.num_tokens;
    r->status = RequestStatus::kRunning;
    running_.push_back(r);
    Emit(r, num_new, &out);
    budget -= num_new;
  }
  return out;
}

bool Scheduler::CheckFinished(Request* r, int32_t token) {
  const SamplingParams& p = r->params;
  const bool past_min = r->num_output_tokens() >= p.min_tokens;
  if (past_min && !p.ignore_eos && std::find(eos_ids_.begin(), eos_ids_.end(), token) != eos_ids_.end()) {
    r->finish_reason = FinishReason::kStop;
    r->stop_token = token;
    return true;
  }
  if (past_min && std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), token) != p.stop_token_ids.end()) {
    r->finish_reason = FinishReason::kStop;
    r->stop_token = token;
    return true;
  }
  if (r->num_output_tokens() >= p.max_tokens || r->num_tokens() >= config_.max_model_len) {
    r->finish_reason = FinishReason::kLength;
    return true;
  }
  return false;
}

std::vector<std::unique_ptr<Request>> Scheduler::Update(const SchedulerOutput& out,
                                                        std::span<const int32_t> sampled) {
  std::vector<std::unique_ptr<Request>> finished;
  size_t next_sample = 0;
  for (const ScheduledRequest& s : out.scheduled) {
    Request* r = Find(s.id);
    KAON_CHECK(r != nullptr) << "scheduled request " << s.id << " is gone";
    r->num_computed_tokens += s.num_new_tokens;
    kv_->CacheComputedBlocks(r->id, r->tokens, r->num_computed_tokens);
    if (!s.samples) continue;
    KAON_CHECK(next_sample < sampled.size()) << "fewer sampled tokens than sampling requests";
    const int32_t token = sampled[next_sample++];
    r->tokens.push_back(token);
    if (!CheckFinished(r, token)) continue;
    r->status = RequestStatus::kFinished;
    kv_->Free(r->id);
    running_.erase(std::find(running_.begin(), running_.end(), r));
    freed_.push_back(r->id);
    auto node = requests_.extract(r->id);
    finished.push_back(std::move(node.mapped()));
  }
  return finished;
}

std::unique_ptr<Request> Scheduler::Abort(int64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return nullptr;
  Request* r = it->second.get();
  if (auto w = std::find(waiting_.begin(), waiting_.end(), r); w != waiting_.end()) waiting_.erase(w);
  if (auto q = std::find(running_.begin(), running_.end(), r); q != running_.end()) running_.erase(q);
  kv_->Free(id);
  freed_.push_back(id);
  r->status = RequestStatus::kFinished;
  r->finish_reason = FinishReason::kAbort;
  auto node = requests_.extract(it);
  return std::move(node.mapped());
}

}  // namespace kaon
