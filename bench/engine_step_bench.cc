// Host cost of one step of the real serving engine. kaon::Engine is built
// through the normal start-up path (LoadEngineParts via Engine::Create), but
// the CausalLM computes nothing: Forward returns at once and Sample answers
// a fixed id. So every microsecond measured is host work a GPU would leave
// exposed between steps: scheduling, batch and sampling-table building,
// bookkeeping, and the hand-off to request channels, whose consumers run
// concurrently on their own threads as the HTTP server's do.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/engine/engine.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// "▁do" in stories260k: neither EOS (2) nor BOS-as-EOS (1), and plain text,
// so no request stops and detokenization takes its ordinary path.
constexpr int32_t kOutputToken = 400;
// Prompt ids: above <unk>, <s>, </s> and the byte tokens, below the vocab's end.
constexpr int32_t kFirstOrdinaryId = 259;
constexpr int32_t kLastOrdinaryId = 510;
constexpr int64_t kBlockSize = 16;
// Recorded steps: the prefill, a full block cycle discarded, then the timed ones.
constexpr int64_t kWarmupSteps = kBlockSize;
constexpr int64_t kTimedSteps = 256;
// Room for the untimed steps around the window: nobody finishes inside it.
constexpr int64_t kMaxTokens = 4 * kTimedSteps;

fs::path g_model_dir;

class InstantModel : public kaon::CausalLM {
 public:
  explicit InstantModel(kaon::ModelConfig config) : config_(std::move(config)) {}
  const kaon::ModelConfig& config() const override { return config_; }
  std::string device_name() const override { return "instant (no compute)"; }
  int64_t allocated_bytes() const override { return 0; }
  absl::Status Forward(const kaon::ForwardBatch&) override { return absl::OkStatus(); }
  absl::Status Sample(int32_t, std::span<const kaon::SamplingRow> rows, kaon::SampleResult* out) override {
    for (size_t i = 0; i < rows.size(); ++i) {
      out[i].token = kOutputToken;
      out[i].logprob = 0;
      out[i].top.clear();
    }
    return absl::OkStatus();
  }
  absl::Status Logprobs(int64_t, int32_t, int32_t, float* token_logprob,
                        std::vector<kaon::TokenLogprob>* top) override {
    *token_logprob = 0;
    top->clear();
    return absl::OkStatus();
  }

 private:
  kaon::ModelConfig config_;
};

// stories260k's tokenizer and configs, with a context long enough for 4k
// prompts. The weights are left out on purpose: with a model_loader the
// engine must not read them, and Create would fail if it tried.
bool MakeModelDir(const fs::path& dir) {
  const fs::path src = fs::path(KAON_SOURCE_DIR) / "models" / "stories260k";
  std::error_code ec;
  fs::create_directories(dir, ec);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    if (!ec) fs::copy_file(src / f, dir / f, fs::copy_options::overwrite_existing, ec);
  }
  if (ec) return false;
  std::ifstream in(src / "config.json");
  nlohmann::json config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) return false;
  config["max_position_embeddings"] = 8192;
  std::ofstream out(dir / "config.json");
  out << config.dump(2);
  return static_cast<bool>(out);
}

struct StepSample {
  double total = 0;  // the phases' sum: Step() as the engine times it
  kaon::StepPhaseSeconds phases;
  int64_t metadata_bytes = 0;
  int64_t scheduled_tokens = 0;
  int64_t preemptions = 0;  // so far
  Clock::time_point end;
};

// Filled on the engine thread from the very first step, into storage
// reserved up front: which step is which does not depend on how quickly
// this thread notices, and recording allocates nothing in the engine's loop.
// (An instant model decodes a whole max_tokens in milliseconds.)
struct Recorder {
  explicit Recorder(size_t n) : samples(n) {}
  void OnStep(const kaon::StepPhaseSeconds& p) {
    const int64_t i = count.load(std::memory_order_relaxed);
    if (i >= static_cast<int64_t>(samples.size())) return;
    StepSample& s = samples[i];
    s.phases = p;
    s.total = p.schedule + p.prepare + p.forward + p.sample + p.update + p.emit;
    // on_step carries no metadata size or token count; stats() is safe here
    // (Step holds no lock when it calls on_step).
    const kaon::EngineStats st = engine->stats();
    s.metadata_bytes = st.last_step_metadata_bytes;
    s.scheduled_tokens = st.num_scheduled_tokens - scheduled_so_far;
    scheduled_so_far = st.num_scheduled_tokens;
    s.preemptions = st.num_preemptions;
    s.end = Clock::now();
    count.store(i + 1, std::memory_order_release);
  }
  std::vector<StepSample> samples;
  std::atomic<int64_t> count{0};
  int64_t scheduled_so_far = 0;
  kaon::Engine* engine = nullptr;  // set before the first Submit
};

// Event-loop consumers in the HTTP server's manner: the notify only queues
// the stream on its shard; the shard's thread drains it with TryNext, which
// is where detokenization runs. The notify holds the state by shared_ptr, as
// the server's does: a Push may still be calling a notify it copied just
// before SetNotify(nullptr) returned.
class Consumers {
 public:
  Consumers(std::vector<std::unique_ptr<kaon::RequestHandle>>& handles, int threads)
      : state_(std::make_shared<State>(handles.size(), threads)) {
    State* st = state_.get();
    for (size_t i = 0; i < handles.size(); ++i) {
      st->streams[i].handle = handles[i].get();
      st->streams[i].shard = i % st->shards.size();
    }
    for (Shard& sh : st->shards) sh.thread = std::thread([st, &sh] { st->Run(sh); });
    for (size_t i = 0; i < handles.size(); ++i) {
      handles[i]->SetNotify([state = state_, i] { state->Wake(i); });
      st->Wake(i);  // events pushed before SetNotify are picked up here
    }
  }
  ~Consumers() {
    for (Stream& s : state_->streams) s.handle->SetNotify(nullptr);
    for (Shard& sh : state_->shards) {
      {
        std::lock_guard<std::mutex> lock(sh.mu);
        sh.stop = true;
      }
      sh.cv.notify_one();
      sh.thread.join();
    }
  }

 private:
  struct Stream {
    kaon::RequestHandle* handle = nullptr;
    size_t shard = 0;
    std::atomic<bool> queued{false};
  };
  struct Shard {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<size_t> ready;
    bool stop = false;
    std::thread thread;
  };
  struct State {
    State(size_t num_streams, int num_shards) : streams(num_streams), shards(num_shards) {}
    // Engine thread: one short lock, and only for a stream not already queued.
    void Wake(size_t i) {
      if (streams[i].queued.exchange(true, std::memory_order_acq_rel)) return;
      Shard& sh = shards[streams[i].shard];
      {
        std::lock_guard<std::mutex> lock(sh.mu);
        sh.ready.push_back(i);
      }
      sh.cv.notify_one();
    }
    void Run(Shard& sh) {
      std::vector<size_t> batch;
      for (;;) {
        {
          std::unique_lock<std::mutex> lock(sh.mu);
          sh.cv.wait(lock, [&] { return sh.stop || !sh.ready.empty(); });
          if (sh.stop) return;
          batch.swap(sh.ready);
        }
        for (size_t i : batch) {
          Stream& s = streams[i];
          // Cleared before draining, so a push after the drain queues it again.
          s.queued.store(false, std::memory_order_release);
          while (std::optional<kaon::RequestOutput> ev = s.handle->TryNext()) {
            benchmark::DoNotOptimize(ev->text.data());
          }
        }
        batch.clear();
      }
    }
    std::vector<Stream> streams;
    std::vector<Shard> shards;
  };

  std::shared_ptr<State> state_;
};

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const size_t k = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(k, v.size() - 1)];
}

void BM_EngineStep(benchmark::State& state) {
  const int64_t num_seqs = state.range(0), context = state.range(1);
  Recorder rec(1 + kWarmupSteps + kTimedSteps);

  kaon::EngineConfig config;
  kaon::EngineOptions& o = config.options;
  o.max_num_seqs = num_seqs;
  // The whole prefill fits one step, so every sequence enters decode at the
  // same step and holds its intended length. Decode steps are unaffected:
  // the runner sizes its buffers from this once, at start-up.
  o.max_num_batched_tokens = num_seqs * context;
  o.block_size = kBlockSize;
  // Every sequence's prompt and all its outputs, plus one block: no preemption.
  o.num_kv_blocks = num_seqs * ((context + kMaxTokens) / kBlockSize + 1);
  o.model_loader = [](const std::string&, const kaon::ModelInfo& info,
                      const kaon::Capacity&) -> absl::StatusOr<std::unique_ptr<kaon::CausalLM>> {
    return std::make_unique<InstantModel>(info.config);
  };
  config.on_step = [&rec](const kaon::StepPhaseSeconds& p) { rec.OnStep(p); };
  absl::StatusOr<std::unique_ptr<kaon::Engine>> engine = kaon::Engine::Create(g_model_dir.string(), config);
  if (!engine.ok()) {
    state.SkipWithError(std::string(engine.status().message()).c_str());
    return;
  }
  rec.engine = engine->get();

  // Centred on `context` over the timed window; lengths staggered within a
  // block so that block-boundary work spreads over steps, as in real traffic.
  std::mt19937 rng(static_cast<uint32_t>(num_seqs * 100003 + context));
  std::uniform_int_distribution<int32_t> id(kFirstOrdinaryId, kLastOrdinaryId);
  std::vector<kaon::GenerationRequest> requests(num_seqs);
  for (int64_t i = 0; i < num_seqs; ++i) {
    kaon::GenerationRequest& r = requests[i];
    r.prompt_ids.resize(context - kWarmupSteps - kTimedSteps / 2 - i % kBlockSize);
    for (int32_t& t : r.prompt_ids) t = id(rng);
    r.params.max_tokens = kMaxTokens;
    r.params.seed = static_cast<uint64_t>(i);
  }
  absl::StatusOr<std::vector<std::unique_ptr<kaon::RequestHandle>>> handles =
      (*engine)->SubmitAll(std::move(requests));
  if (!handles.ok()) {
    state.SkipWithError(std::string(handles.status().message()).c_str());
    return;
  }
  int64_t prompt_tokens = 0;
  for (const auto& h : *handles) prompt_tokens += h->num_prompt_tokens();
  {
    // As many as `kaon serve` gives its API workers by default.
    Consumers consumers(*handles, std::max(2, static_cast<int>(std::thread::hardware_concurrency() / 4)));
    // The engine steps on its own thread; each iteration reports the next
    // recorded step. Polling with sleeps keeps this thread off the CPUs.
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    int64_t next = 1 + kWarmupSteps;
    for (auto _ : state) {
      while (rec.count.load(std::memory_order_acquire) <= next && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      if (rec.count.load(std::memory_order_acquire) <= next) {
        state.SkipWithError("the engine stopped stepping");
        break;
      }
      state.SetIterationTime(rec.samples[next++].total);
    }
  }
  if (state.error_occurred()) return;
  // Step 0 must be the whole prefill and every later one a decode of every
  // sequence, or the steps are not the ones this case claims to time.
  bool steady = rec.samples[0].scheduled_tokens == prompt_tokens;
  for (size_t i = 1; i < rec.samples.size(); ++i) {
    steady = steady && rec.samples[i].scheduled_tokens == num_seqs && rec.samples[i].preemptions == 0;
  }
  if (!steady) {
    state.SkipWithError("the prefill took more than one step, or a sequence was preempted or finished");
    return;
  }

  std::vector<double> totals, periods;
  kaon::StepPhaseSeconds sum;
  double metadata = 0;
  for (int64_t i = 1 + kWarmupSteps; i < 1 + kWarmupSteps + kTimedSteps; ++i) {
    const StepSample& s = rec.samples[i];
    totals.push_back(s.total);
    periods.push_back(std::chrono::duration<double>(s.end - rec.samples[i - 1].end).count());
    sum.schedule += s.phases.schedule;
    sum.prepare += s.phases.prepare;
    sum.forward += s.phases.forward;
    sum.sample += s.phases.sample;
    sum.update += s.phases.update;
    sum.emit += s.phases.emit;
    metadata += static_cast<double>(s.metadata_bytes);
  }
  const double us_per_step = 1e6 / kTimedSteps;
  state.counters["p50_us"] = Percentile(totals, 0.50) * 1e6;
  state.counters["p99_us"] = Percentile(totals, 0.99) * 1e6;
  // Step end to step end: the engine loop around Step() included.
  state.counters["period_p50_us"] = Percentile(periods, 0.50) * 1e6;
  state.counters["sched_us"] = sum.schedule * us_per_step;
  state.counters["prep_us"] = sum.prepare * us_per_step;
  state.counters["fwd_us"] = sum.forward * us_per_step;
  state.counters["sample_us"] = sum.sample * us_per_step;
  state.counters["update_us"] = sum.update * us_per_step;
  state.counters["emit_us"] = sum.emit * us_per_step;
  state.counters["meta_B"] = metadata / kTimedSteps;
}
BENCHMARK(BM_EngineStep)
    ->ArgsProduct({{64, 256}, {1024, 4096}})
    ->ArgNames({"seqs", "context"})
    ->Iterations(kTimedSteps)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  g_model_dir = fs::temp_directory_path() / ("kaon_engine_step_bench." + std::to_string(::getpid()));
  int rc = 0;
  if (MakeModelDir(g_model_dir)) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    std::cerr << "cannot build the model directory " << g_model_dir << " from " << KAON_SOURCE_DIR << "\n";
    rc = 1;
  }
  benchmark::Shutdown();
  std::error_code ec;
  fs::remove_all(g_model_dir, ec);
  return rc;
}
