#include "server/engine/engine.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "absl/strings/str_cat.h"
#include "server/common/status.h"
#include "server/common/thread_name.h"

namespace kaon {

// ---------------------------------------------------------------- handle

RequestHandle::~RequestHandle() {
  std::vector<int64_t> unfinished;
  for (const Choice& c : choices_) {
    if (!c.finished) unfinished.push_back(c.child_id);
  }
  // engine_ is null for a handle that was refused before it was queued.
  if (!unfinished.empty() && engine_ != nullptr) engine_->AbortChildren(unfinished);
}

void RequestHandle::Abort() {
  std::vector<int64_t> unfinished;
  for (const Choice& c : choices_) {
    if (!c.finished) unfinished.push_back(c.child_id);
  }
  if (!unfinished.empty() && engine_ != nullptr) engine_->AbortChildren(unfinished);
}

std::optional<RequestOutput> RequestHandle::Next() {
  if (best_of_n_ == 0) return NextStreamed(/*wait=*/true);
  if (!ranked_) CollectBestOf(/*wait=*/true);
  if (ranked_->empty()) return std::nullopt;
  RequestOutput ev = std::move(ranked_->front());
  ranked_->erase(ranked_->begin());
  return ev;
}

std::optional<RequestOutput> RequestHandle::TryNext() {
  if (best_of_n_ == 0) return NextStreamed(/*wait=*/false);
  if (!ranked_ && !CollectBestOf(/*wait=*/false)) return std::nullopt;
  if (ranked_->empty()) return std::nullopt;
  RequestOutput ev = std::move(ranked_->front());
  ranked_->erase(ranked_->begin());
  return ev;
}

bool RequestHandle::done() const {
  if (best_of_n_ != 0) return ranked_.has_value() && ranked_->empty();
  return num_finished_ == static_cast<int64_t>(choices_.size());
}

bool RequestHandle::CollectBestOf(bool wait) {
  if (best_of_acc_.empty()) {
    best_of_acc_.resize(choices_.size());
    best_of_score_.assign(choices_.size(), 0.0);
  }
  while (std::optional<RequestOutput> ev = NextStreamed(wait)) {
    RequestOutput& acc = best_of_acc_[ev->index];
    acc.index = ev->index;
    acc.token_ids.insert(acc.token_ids.end(), ev->token_ids.begin(), ev->token_ids.end());
    for (const SampleResult& lp : ev->logprobs) best_of_score_[ev->index] += lp.logprob;
    acc.logprobs.insert(acc.logprobs.end(), ev->logprobs.begin(), ev->logprobs.end());
    acc.prompt_logprobs.insert(acc.prompt_logprobs.end(), ev->prompt_logprobs.begin(), ev->prompt_logprobs.end());
    acc.text += ev->text;
    if (ev->finished()) {
      acc.finish_reason = ev->finish_reason;
      acc.stop_reason = ev->stop_reason;
      acc.usage = ev->usage;
      acc.error = ev->error;
    }
  }
  if (num_finished_ < static_cast<int64_t>(choices_.size())) return false;
  std::vector<size_t> order(best_of_acc_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return best_of_score_[a] > best_of_score_[b]; });
  ranked_.emplace();
  for (int32_t i = 0; i < best_of_n_; ++i) {
    RequestOutput ev = std::move(best_of_acc_[order[i]]);
    ev.index = i;
    if (!client_logprobs_) ev.logprobs.clear();
    ranked_->push_back(std::move(ev));
  }
  return true;
}

std::optional<RequestOutput> RequestHandle::NextStreamed(bool wait) {
  while (num_finished_ < static_cast<int64_t>(choices_.size())) {
    std::optional<RequestOutput> next = wait ? std::optional<RequestOutput>(channel_->Pop()) : channel_->TryPop();
    if (!next) return std::nullopt;
    RequestOutput ev = std::move(*next);
    Choice& c = choices_.at(ev.index);
    if (c.finished) continue;  // e.g. the abort that follows a stop string
    if (!ev.error.empty()) {
      c.finished = true;
      ++num_finished_;
      return ev;
    }
    const TextDelta delta = c.output->Push(ev.token_ids);
    ev.text = delta.text;
    if (delta.stopped) {
      // A stop string ended it: drop the tokens after the match and tell the
      // engine to stop generating for this choice.
      ev.token_ids.resize(delta.num_tokens_consumed);
      if (ev.logprobs.size() > delta.num_tokens_consumed) ev.logprobs.resize(delta.num_tokens_consumed);
      ev.finish_reason = FinishReason::kStop;
      ev.stop_reason = delta.stop_str;
      engine_->AbortChildren({c.child_id});
    } else if (ev.finished()) {
      ev.text += c.output->Finish();
    }
    c.num_tokens += static_cast<int64_t>(ev.token_ids.size());
    if (ev.finished()) {
      c.finished = true;
      ++num_finished_;
      if (ev.usage) ev.usage->completion_tokens = c.num_tokens;
    }
    return ev;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- engine

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const std::string& model_dir, const EngineConfig& config) {
  std::unique_ptr<Engine> e(new Engine());
  e->config_ = config;
  KAON_ASSIGN_OR_RETURN(EngineParts parts, LoadEngineParts(model_dir, config.options));
  KAON_ASSIGN_OR_RETURN(e->tokenizer_, Tokenizer::FromModelDir(model_dir));
  e->parts_ = std::move(parts);
  const Capacity& cap = e->parts_.capacity;
  const ModelConfig& mc = e->parts_.info.config;
  // Padded model vocabularies (Qwen2.5: 152064 rows for 151665 tokens) must
  // never sample an id the tokenizer cannot decode.
  const auto sampleable = static_cast<int32_t>(std::min<int64_t>(mc.vocab_size, e->tokenizer_->VocabSize()));
  e->runner_ = std::make_unique<ModelRunner>(*e->parts_.model, cap, sampleable, mc.eos_token_ids);
  e->kv_ = std::make_unique<KvCacheManager>(cap.num_kv_blocks, cap.block_size, config.enable_prefix_caching);
  SchedulerConfig sc;
  sc.max_num_batched_tokens = cap.max_num_batched_tokens;
  sc.max_num_seqs = cap.max_num_seqs;
  sc.max_model_len = cap.max_model_len;
  sc.policy = config.policy;
  // The queue limit is enforced synchronously in Submit, not on the engine thread.
  sc.max_num_queued_requests = 0;
  sc.max_prompt_logprob_tokens = cap.max_prompt_logprob_rows;
  e->scheduler_ = std::make_unique<Scheduler>(sc, e->kv_.get());
  e->scheduler_->set_eos_ids(mc.eos_token_ids);
  e->thread_ = std::thread(&Engine::Loop, e.get());
  return e;
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status Engine::CheckInvariants(const GenerationRequest& request) const {
  // Requests arrive validated (api::CheckGenerationRequest and the front
  // ends' parsers, server/api/request_rules.h): a breach here is a caller's
  // bug, refused without a client-facing message of its own so that each
  // rule is worded once. What only the engine knows (the cache, the queue)
  // is checked below and in the scheduler.
  const SamplingParams& p = request.params;
  const int64_t vocab = parts_.info.config.vocab_size;
  const int64_t prompt = static_cast<int64_t>(request.prompt_ids.size());
  bool ok = prompt > 0 && p.max_tokens >= 1 && p.max_tokens <= parts_.capacity.max_model_len - prompt &&
            p.n >= 1 && p.n <= SamplingParams::kMaxChoices && p.num_candidates() <= SamplingParams::kMaxChoices &&
            p.logprobs <= SamplingParams::kMaxLogprobs && p.prompt_logprobs <= SamplingParams::kMaxLogprobs;
  for (int32_t id : request.prompt_ids) ok = ok && id >= 0 && id < vocab;
  for (const auto& [id, bias] : p.logit_bias) ok = ok && id >= 0 && id < vocab;
  for (int32_t id : p.stop_token_ids) ok = ok && id >= 0 && id < vocab;
  if (!ok) return absl::InternalError("engine: a request reached Submit without validation (api::CheckGenerationRequest)");
  return absl::OkStatus();
}

std::unique_ptr<RequestHandle> Engine::MakeHandle(GenerationRequest request,
                                                  std::vector<std::pair<std::unique_ptr<Request>, Route>>& children) {
  const SamplingParams& p = request.params;
  const int64_t prompt = static_cast<int64_t>(request.prompt_ids.size());
  const int32_t candidates = p.num_candidates();
  const uint64_t seed = p.seed ? *p.seed : std::random_device{}();
  // One id for the handle (the group) and one per child.
  const int64_t id = next_id_.fetch_add(1 + candidates);
  auto channel = std::make_shared<RequestChannel>();
  std::unique_ptr<RequestHandle> handle(new RequestHandle(this, id, channel, prompt));
  OutputOptions out_options;
  out_options.skip_special_tokens = p.skip_special_tokens;
  out_options.stop = p.stop;
  out_options.include_stop_str_in_output = p.include_stop_str_in_output;

  SamplingParams child_params = p;
  if (candidates > p.n) {
    // Ranking needs every candidate's token logprobs.
    handle->best_of_n_ = p.n;
    handle->client_logprobs_ = p.logprobs >= 0;
    child_params.logprobs = std::max(p.logprobs, 0);
  }
  for (int32_t i = 0; i < candidates; ++i) {
    auto r = std::make_unique<Request>();
    r->id = id + 1 + i;
    r->sample_index = i;
    r->first_sibling_id = id + 1;
    r->priority = request.priority;
    r->arrival = next_arrival_.fetch_add(1);
    r->params = child_params;
    r->seed = seed;
    // The last child takes the caller's ids; the others copy them.
    r->tokens = i + 1 == candidates ? std::move(request.prompt_ids) : request.prompt_ids;
    r->num_prompt_tokens = prompt;
    handle->choices_.push_back({r->id, std::make_unique<OutputProcessor>(*tokenizer_, r->tokens, out_options)});
    children.emplace_back(std::move(r), Route{channel, i, id});
  }
  return handle;
}

absl::StatusOr<std::unique_ptr<RequestHandle>> Engine::Submit(GenerationRequest request) {
  std::vector<GenerationRequest> one;
  one.push_back(std::move(request));
  KAON_ASSIGN_OR_RETURN(std::vector<std::unique_ptr<RequestHandle>> handles, SubmitAll(std::move(one)));
  return std::move(handles.front());
}

absl::StatusOr<std::vector<std::unique_ptr<RequestHandle>>> Engine::SubmitAll(
    std::vector<GenerationRequest> requests) {
  if (std::optional<std::string> fatal = fatal_error()) {
    return absl::UnavailableError(absl::StrCat("the engine has failed: ", *fatal));
  }
  int64_t sequences = 0;
  for (const GenerationRequest& r : requests) {
    KAON_RETURN_IF_ERROR(CheckInvariants(r));
    sequences += r.params.num_candidates();
  }
  const int64_t max_queued = config_.max_num_queued_requests;
  const int64_t max_running = parts_.capacity.max_num_seqs;
  if (max_queued > 0 && sequences > max_queued + max_running) {
    // Retrying cannot help: even an idle server holds fewer.
    return absl::InvalidArgumentError(absl::StrCat(
        "this request needs ", sequences, " sequences (prompts times n or best_of) but the server runs at most ",
        max_running, " (--max-num-seqs) and queues at most ", max_queued, " (--max-num-queued-requests)"));
  }

  std::vector<std::unique_ptr<RequestHandle>> handles;
  std::vector<std::pair<std::unique_ptr<Request>, Route>> children;
  handles.reserve(requests.size());
  for (GenerationRequest& r : requests) handles.push_back(MakeHandle(std::move(r), children));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (max_queued > 0) {
      // The queue limit counts requests that will wait: what is submitted
      // and not yet running, less the running slots still free. So a burst
      // into an idle server fills every running slot and then the queue.
      const int64_t free_slots = std::max<int64_t>(0, max_running - stats_.num_running);
      if (num_queued_ + sequences - free_slots > max_queued) {
        // The handles were never queued: dropping them must not abort.
        for (auto& h : handles) h->engine_ = nullptr;
        return absl::ResourceExhaustedError(
            absl::StrCat("the request queue is full (", max_queued, " queued requests); retry later"));
      }
    }
    for (auto& c : children) inbox_.push_back(std::move(c));
    num_queued_ += sequences;
  }
  cv_.notify_one();
  return handles;
}

void Engine::Abort(int64_t request_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    parent_aborts_.push_back(request_id);
  }
  cv_.notify_one();
}

void Engine::AbortChildren(const std::vector<int64_t>& child_ids) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    aborts_.insert(aborts_.end(), child_ids.begin(), child_ids.end());
  }
  cv_.notify_one();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Engine::Loop() {
  SetCurrentThreadName("kaon-engine");
  std::vector<std::pair<std::unique_ptr<Request>, Route>> inbox;
  std::vector<int64_t> aborts;
  std::vector<int64_t> parents;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return stop_ || !inbox_.empty() || !aborts_.empty() || !parent_aborts_.empty() || scheduler_->has_work();
      });
      if (stop_) break;
      inbox.swap(inbox_);
      aborts.swap(aborts_);
      parents.swap(parent_aborts_);
    }
    for (auto& [request, route] : inbox) {
      const int64_t id = request->id;
      auto [it, inserted] = routes_.insert_or_assign(id, route);
      groups_[route.group].live.push_back(id);
      absl::Status s = scheduler_->Add(std::move(request));
      if (!s.ok()) {
        RequestOutput ev;
        ev.index = route.index;
        ev.error = std::string(s.message());
        route.channel->Push(std::move(ev));
        DropRoute(it);
      }
    }
    inbox.clear();
    for (int64_t parent : parents) {
      auto g = groups_.find(parent);
      if (g != groups_.end()) aborts.insert(aborts.end(), g->second.live.begin(), g->second.live.end());
    }
    parents.clear();
    for (int64_t id : aborts) {
      if (std::unique_ptr<Request> r = scheduler_->Abort(id)) Finish(std::move(r));
    }
    aborts.clear();
    if (scheduler_->has_work()) {
      step_started_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
      Step();
      step_started_ns_.store(0, std::memory_order_relaxed);
    }
    PublishStats();
  }
  // Shutting down: every live request ends as aborted, so no consumer waits forever.
  FailAll("");
}

void Engine::FailAll(const std::string& error) {
  std::vector<int64_t> live;
  for (const auto& [id, route] : routes_) live.push_back(id);
  for (int64_t id : live) {
    if (std::unique_ptr<Request> r = scheduler_->Abort(id)) Finish(std::move(r), error);
  }
}

std::optional<std::string> Engine::fatal_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fatal_error_;
}

void Engine::Step() {
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point from) { return std::chrono::duration<double>(Clock::now() - from).count(); };
  auto t0 = Clock::now();
  const SchedulerOutput out = scheduler_->Schedule();
  const double schedule = seconds(t0);
  if (out.empty()) return;
  absl::StatusOr<const StepOutput*> result = runner_->Execute(out);
  const RunnerTimings& rt = runner_->timings();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.num_steps;
    stats_.num_scheduled_tokens += out.num_scheduled_tokens;
    stats_.num_preemptions += static_cast<int64_t>(out.preempted.size());
    stats_.num_forward_calls = runner_->num_forward_calls();
    stats_.num_forward_tokens = runner_->num_forward_tokens();
    stats_.phase_seconds.schedule += schedule;
    stats_.phase_seconds.prepare += rt.prepare;
    stats_.phase_seconds.forward += rt.forward;
    stats_.phase_seconds.sample += rt.sample;
    stats_.last_step_metadata_bytes = runner_->metadata_bytes();
    stats_.device_to_host_bytes = runner_->device_to_host_bytes();
  }
  if (!result.ok()) {
    const std::string error = absl::StrCat("engine step failed: ", result.status().message());
    if (IsFatal(result.status())) {
      // Nothing more can run on this backend: fail everyone, refuse new work.
      {
        std::lock_guard<std::mutex> lock(mu_);
        fatal_error_ = error;
      }
      FailAll(error);
      return;
    }
    // A failed step fails only the requests in it; the engine goes on.
    for (const ScheduledRequest& s : out.scheduled) {
      if (std::unique_ptr<Request> r = scheduler_->Abort(s.id)) Finish(std::move(r), error);
    }
    return;
  }
  const StepOutput& step = **result;

  t0 = Clock::now();
  for (const auto& [index, entries] : step.prompt_logprobs) {
    Request* r = scheduler_->Find(out.scheduled[index].id);
    r->prompt_logprobs.insert(r->prompt_logprobs.end(), entries.begin(), entries.end());
  }
  // Update hands finished requests back (their events go out below): look
  // the sampling requests up first.
  sampling_.clear();
  for (const ScheduledRequest& s : out.scheduled) {
    if (s.samples) sampling_.push_back(scheduler_->Find(s.id));
  }
  std::vector<std::unique_ptr<Request>> finished = scheduler_->Update(out, step.sampled);
  const double update = seconds(t0);

  t0 = Clock::now();
  for (size_t k = 0; k < sampling_.size(); ++k) {
    Emit(sampling_[k], &step.samples[k], sampling_[k]->params.logprobs >= 0);
  }
  finished.clear();  // the finished requests' events went out above
  const double emit = seconds(t0);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.phase_seconds.update += update;
    stats_.phase_seconds.emit += emit;
  }
  if (config_.on_step) config_.on_step({schedule, rt.prepare, rt.forward, rt.sample, update, emit});
}

void Engine::Emit(Request* r, const SampleResult* sample, bool with_logprobs) {
  auto it = routes_.find(r->id);
  if (it == routes_.end()) return;
  RequestOutput ev;
  ev.index = it->second.index;
  ev.token_ids.push_back(sample->token);
  if (with_logprobs) ev.logprobs.push_back(*sample);
  if (r->params.prompt_logprobs >= 0 && !r->prompt_logprobs_sent) {
    ev.prompt_logprobs = r->prompt_logprobs;
    r->prompt_logprobs_sent = true;
  }
  ev.usage = Usage{r->num_prompt_tokens, r->num_output_tokens(), std::max<int64_t>(0, r->num_cached_tokens)};
  if (r->finished()) {
    ev.finish_reason = r->finish_reason;
    if (r->stop_token) ev.stop_reason = *r->stop_token;
  }
  it->second.channel->Push(std::move(ev));
  if (r->finished()) DropRoute(it);
}

void Engine::DropRoute(absl::flat_hash_map<int64_t, Route>::iterator it) {
  auto g = groups_.find(it->second.group);
  if (g != groups_.end()) {
    std::vector<int64_t>& live = g->second.live;
    live.erase(std::remove(live.begin(), live.end(), it->first), live.end());
    if (live.empty()) groups_.erase(g);
  }
  routes_.erase(it);
}

void Engine::Finish(std::unique_ptr<Request> r, const std::string& error) {
  auto it = routes_.find(r->id);
  if (it == routes_.end()) return;
  RequestOutput ev;
  ev.index = it->second.index;
  ev.finish_reason = FinishReason::kAbort;
  ev.error = error;
  ev.usage = Usage{r->num_prompt_tokens, r->num_output_tokens(), std::max<int64_t>(0, r->num_cached_tokens)};
  it->second.channel->Push(std::move(ev));
  DropRoute(it);
}

double Engine::current_step_seconds() const {
  const int64_t started = step_started_ns_.load(std::memory_order_relaxed);
  if (started == 0) return 0;
  const std::chrono::steady_clock::duration elapsed =
      std::chrono::steady_clock::now().time_since_epoch() - std::chrono::steady_clock::duration(started);
  return std::chrono::duration<double>(elapsed).count();
}

std::string Engine::device_summary() const {
  // The model's own name when it has one ("cpu float32 avx512": the kernels'
  // path too, so a benchmark log says what ran).
  std::string s = parts_.model != nullptr ? parts_.model->device_name() : "";
  if (s.rfind(parts_.device + " " + parts_.dtype, 0) != 0) s = absl::StrCat(parts_.device, " ", parts_.dtype);
  if (!parts_.device_reason.empty()) absl::StrAppend(&s, " (--device auto: ", parts_.device_reason, ")");
  return s;
}

int64_t Engine::num_kv_blocks() const { return parts_.capacity.num_kv_blocks; }

void Engine::PublishStats() {
  const KvCacheStats& kv = kv_->stats();
  std::lock_guard<std::mutex> lock(mu_);
  stats_.num_running = scheduler_->num_running();
  stats_.num_waiting = scheduler_->num_waiting();
  stats_.kv_cache_usage = kv.usage();
  stats_.prefix_cache_queries = kv.prefix_queries;
  stats_.prefix_cache_hits = kv.prefix_hits;
  num_queued_ = scheduler_->num_waiting() + static_cast<int64_t>(inbox_.size());
}

}  // namespace kaon
