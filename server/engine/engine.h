// The continuous-batching engine: a thread that loops schedule → execute →
// sample → update over every live request, so many requests share each
// forward pass. Submit() is thread-safe and returns a handle whose events
// stream the request's tokens; text (incremental detokenization, stop
// strings) is produced on the consumer's thread, never on the engine's.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "server/engine/engine_setup.h"
#include "server/engine/kv_cache_manager.h"
#include "server/engine/model_runner.h"
#include "server/engine/output_processor.h"
#include "server/engine/request_channel.h"
#include "server/engine/scheduler.h"
#include "server/tokenizer/tokenizer.h"

namespace kaon {

// Where an engine step spends its time: schedule → prepare (the runner's
// batch and sampling table) → forward → sample → update (scheduler
// bookkeeping) → emit (events to the request channels).
struct StepPhaseSeconds {
  double schedule = 0, prepare = 0, forward = 0, sample = 0, update = 0, emit = 0;
};

struct EngineConfig {
  EngineOptions options;
  SchedulingPolicy policy = SchedulingPolicy::kFcfs;
  int64_t max_num_queued_requests = 0;  // 0 = unbounded
  bool enable_prefix_caching = true;
  // Called on the engine thread after every step that ran, with that step's
  // phase times (benchmarks and tests); must not block.
  std::function<void(const StepPhaseSeconds&)> on_step;
};

struct GenerationRequest {
  std::vector<int32_t> prompt_ids;
  SamplingParams params;
  int32_t priority = 0;
};

// Counters since start-up; read from any thread.
struct EngineStats {
  int64_t num_steps = 0;
  int64_t num_forward_calls = 0;
  int64_t num_scheduled_tokens = 0;
  int64_t num_forward_tokens = 0;
  int64_t num_preemptions = 0;
  int64_t num_running = 0;
  int64_t num_waiting = 0;
  double kv_cache_usage = 0;
  int64_t prefix_cache_queries = 0;
  int64_t prefix_cache_hits = 0;
  // Seconds spent in each phase of every step so far (host work is all but
  // forward), and the step metadata the last step wrote.
  StepPhaseSeconds phase_seconds;
  int64_t last_step_metadata_bytes = 0;
  // What the backend copied from device to host over all steps (0 on the
  // CPU); divided by num_forward_calls, the per-step figure.
  int64_t device_to_host_bytes = 0;
};

class Engine;

// One submitted request (its n choices). Next() blocks for the next event;
// dropping the handle aborts whatever has not finished. Use from one thread;
// must not outlive its Engine.
class RequestHandle {
 public:
  ~RequestHandle();
  RequestHandle(const RequestHandle&) = delete;
  RequestHandle& operator=(const RequestHandle&) = delete;

  // The next event with its text, or nullopt once every choice has finished.
  // With best_of > n nothing streams: the first call waits for every
  // candidate and the n with the highest cumulative logprob follow, one
  // complete event each.
  std::optional<RequestOutput> Next();
  // Non-blocking Next for event-loop consumers: an event if one is ready;
  // nullopt when none is (check done() to tell "finished" from "not yet").
  // With best_of > n, events appear only once every candidate has finished.
  std::optional<RequestOutput> TryNext();
  bool done() const;
  // Calls `notify` (on the engine thread; it must not block) whenever new
  // events may be ready. See RequestChannel::SetNotify.
  void SetNotify(std::function<void()> notify) { channel_->SetNotify(std::move(notify)); }
  // Stops every unfinished choice; their final events still follow.
  void Abort();
  int64_t id() const { return id_; }
  int64_t num_prompt_tokens() const { return num_prompt_tokens_; }

 private:
  friend class Engine;
  struct Choice {
    int64_t child_id;
    std::unique_ptr<OutputProcessor> output;
    bool finished = false;
    int64_t num_tokens = 0;
  };
  RequestHandle(Engine* engine, int64_t id, std::shared_ptr<RequestChannel> channel, int64_t num_prompt_tokens)
      : engine_(engine), id_(id), channel_(std::move(channel)), num_prompt_tokens_(num_prompt_tokens) {}
  // The next processed event; blocks when `wait`, else nullopt if none is ready.
  std::optional<RequestOutput> NextStreamed(bool wait);
  // Folds candidate events into best_of_acc_ until all finished (true) or,
  // without `wait`, none is ready (false); then ranks into ranked_.
  bool CollectBestOf(bool wait);

  Engine* engine_;
  int64_t id_;
  std::shared_ptr<RequestChannel> channel_;
  int64_t num_prompt_tokens_;
  std::vector<Choice> choices_;
  int64_t num_finished_ = 0;
  // best_of > n: the n choices to return and whether the client asked for logprobs.
  int32_t best_of_n_ = 0;
  bool client_logprobs_ = true;
  std::optional<std::vector<RequestOutput>> ranked_;
  std::vector<RequestOutput> best_of_acc_;
  std::vector<double> best_of_score_;
};

class Engine {
 public:
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const std::string& model_dir, const EngineConfig& config);
  ~Engine();

  // Queues a request already checked by api::CheckGenerationRequest (or a
  // front end's parser): one that breaks those rules is Internal. Beyond
  // them, InvalidArgument for a request that can never fit the KV cache;
  // ResourceExhausted when the queue is full.
  absl::StatusOr<std::unique_ptr<RequestHandle>> Submit(GenerationRequest request);
  // Several requests (one HTTP request's prompts) admitted together or not
  // at all: a request that the queue could never hold is InvalidArgument
  // (retrying cannot help), one that does not fit now ResourceExhausted.
  absl::StatusOr<std::vector<std::unique_ptr<RequestHandle>>> SubmitAll(std::vector<GenerationRequest> requests);

  // Aborts every unfinished choice of a submitted request (by handle id);
  // its final events still reach the handle. Thread-safe.
  void Abort(int64_t request_id);

  const ModelInfo& info() const { return parts_.info; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  int64_t max_model_len() const { return parts_.capacity.max_model_len; }
  int64_t block_size() const { return parts_.capacity.block_size; }
  // "cpu float32 avx512", "cuda bfloat16", with --device auto's reason when it fell back.
  std::string device_summary() const;
  // The device memory plan, one line (empty on the CPU).
  const std::string& memory_summary() const { return parts_.memory_summary; }
  int64_t num_kv_blocks() const;
  EngineStats stats() const;
  // How long the step now running has taken (0 between steps), for a
  // watchdog on another thread.
  double current_step_seconds() const;
  // Set once a step failed with a fatal error (see FatalError): every request
  // was failed and Submit refuses new ones. Thread-safe.
  std::optional<std::string> fatal_error() const;

 private:
  friend class RequestHandle;
  struct Route {
    std::shared_ptr<RequestChannel> channel;
    int32_t index;  // the choice
    int64_t group;  // the handle's id
  };
  // A handle's live choices (n / best_of candidates): aborting the handle's
  // id aborts them. Ids carry no meaning beyond uniqueness.
  struct RequestGroup {
    std::vector<int64_t> live;
  };

  Engine() = default;
  absl::Status CheckInvariants(const GenerationRequest& request) const;
  // The handle and its children (one per candidate), not yet queued.
  std::unique_ptr<RequestHandle> MakeHandle(GenerationRequest request,
                                            std::vector<std::pair<std::unique_ptr<Request>, Route>>& children);
  void AbortChildren(const std::vector<int64_t>& child_ids);
  void Loop();
  void Step();
  void Emit(Request* r, const SampleResult* sample, bool with_logprobs);
  void Finish(std::unique_ptr<Request> r, const std::string& error = "");
  // Forgets a child's route and its place in its group.
  void DropRoute(absl::flat_hash_map<int64_t, Route>::iterator it);
  // Ends every live request (with `error`, or as aborted when empty).
  void FailAll(const std::string& error);
  void PublishStats();

  EngineParts parts_;  // info, capacity, the model on its backend
  EngineConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ModelRunner> runner_;
  std::unique_ptr<KvCacheManager> kv_;
  std::unique_ptr<Scheduler> scheduler_;

  // Engine-thread state.
  absl::flat_hash_map<int64_t, Route> routes_;
  absl::flat_hash_map<int64_t, RequestGroup> groups_;
  std::vector<Request*> sampling_;

  // Shared with submitters.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::unique_ptr<Request>, Route>> inbox_;
  std::vector<int64_t> aborts_;         // child ids
  std::vector<int64_t> parent_aborts_;  // handle ids
  bool stop_ = false;
  std::optional<std::string> fatal_error_;
  std::atomic<int64_t> next_id_{1};
  std::atomic<uint64_t> next_arrival_{0};
  int64_t num_queued_ = 0;              // guarded by mu_: submitted, not yet admitted by the scheduler
  std::atomic<int64_t> step_started_ns_{0};  // steady_clock ticks; 0 between steps
  EngineStats stats_;                   // guarded by mu_

  std::thread thread_;
};

}  // namespace kaon
