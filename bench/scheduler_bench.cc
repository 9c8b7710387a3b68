// Host-side cost of one engine step's bookkeeping: Scheduler::Schedule() +
// Update() with 512 running decode requests and prefix caching on, no model.
// Goal: < 100 µs per step.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "server/engine/scheduler.h"

namespace {

constexpr int64_t kRequests = 512;
constexpr int64_t kPrompt = 100;
constexpr int64_t kSteps = 5000;
constexpr int64_t kBlockSize = 16;

void BM_ScheduleAndUpdate512(benchmark::State& state) {
  const int64_t blocks = kRequests * ((kPrompt + kSteps + 64) / kBlockSize + 1);
  kaon::KvCacheManager kv(blocks, kBlockSize, /*enable_prefix_caching=*/true);
  kaon::SchedulerConfig config;
  config.max_num_batched_tokens = 8192;
  config.max_num_seqs = kRequests;
  config.max_model_len = kPrompt + kSteps + 64;
  kaon::Scheduler scheduler(config, &kv);
  for (int64_t i = 0; i < kRequests; ++i) {
    auto r = std::make_unique<kaon::Request>();
    r->id = i + 1;
    r->arrival = static_cast<uint64_t>(i);
    r->params.max_tokens = kSteps + 32;
    r->params.ignore_eos = true;
    // Half the requests share a 64-token system prompt, as chat traffic does.
    for (int64_t t = 0; t < kPrompt; ++t) r->tokens.push_back(static_cast<int32_t>(t < 64 && i % 2 ? t : i * 7 + t));
    r->num_prompt_tokens = kPrompt;
    if (!scheduler.Add(std::move(r)).ok()) {
      state.SkipWithError("add failed");
      return;
    }
  }
  // Prefill everything once, outside the timing.
  std::vector<int32_t> sampled(kRequests, 5);
  while (scheduler.num_waiting() > 0) {
    auto out = scheduler.Schedule();
    int64_t n = 0;
    for (const auto& s : out.scheduled) n += s.samples;
    scheduler.Update(out, std::span<const int32_t>(sampled.data(), n));
  }
  for (auto _ : state) {
    auto out = scheduler.Schedule();
    auto finished = scheduler.Update(out, sampled);
    benchmark::DoNotOptimize(finished);
  }
  state.counters["running"] = static_cast<double>(scheduler.num_running());
}
BENCHMARK(BM_ScheduleAndUpdate512)->Iterations(kSteps)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
