// CPU decode throughput of the serving engine on the bundled stories260k
// model: each iteration generates 128 greedy tokens after a short prompt,
// for one request alone and for a batch of 16 running together, so the rate
// is dominated by decode steps over a growing paged KV cache (and, for the
// batch, by how well one step serves many sequences).
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "server/engine/engine.h"

namespace {

constexpr int64_t kDecodeTokens = 128;

std::unique_ptr<kaon::Engine> MakeEngine(benchmark::State& state, int threads) {
  kaon::EngineConfig config;
  config.options.num_threads = threads;
  auto engine = kaon::Engine::Create(std::string(KAON_SOURCE_DIR) + "/models/stories260k", config);
  if (!engine.ok()) {
    state.SkipWithError(std::string(engine.status().message()).c_str());
    return nullptr;
  }
  return std::move(*engine);
}

kaon::GenerationRequest DecodeRequest() {
  kaon::GenerationRequest request;
  request.prompt_ids = {1, 403, 407, 261, 378};
  request.params.max_tokens = kDecodeTokens;
  request.params.ignore_eos = true;
  request.params.temperature = 0.0f;
  return request;
}

// Submits `batch` requests at once and waits for all; the tokens they
// produced, or -1 (and the benchmark skipped) on an error.
int64_t RunBatch(benchmark::State& state, kaon::Engine& engine, int batch) {
  std::vector<kaon::GenerationRequest> requests(static_cast<size_t>(batch), DecodeRequest());
  auto handles = engine.SubmitAll(std::move(requests));
  if (!handles.ok()) {
    state.SkipWithError(std::string(handles.status().message()).c_str());
    return -1;
  }
  int64_t tokens = 0;
  for (auto& h : *handles) {
    while (auto ev = h->Next()) {
      if (!ev->error.empty()) {
        state.SkipWithError(ev->error.c_str());
        return -1;
      }
      tokens += static_cast<int64_t>(ev->token_ids.size());
    }
  }
  return tokens;
}

// Args: engine threads, requests per iteration.
void BM_DecodeStories260k(benchmark::State& state) {
  auto engine = MakeEngine(state, static_cast<int>(state.range(0)));
  if (engine == nullptr) return;
  const int batch = static_cast<int>(state.range(1));
  int64_t tokens = 0;
  for (auto _ : state) {
    const int64_t n = RunBatch(state, *engine, batch);
    if (n < 0) return;
    if (n != batch * kDecodeTokens) {
      state.SkipWithError("a request finished before max_tokens");
      return;
    }
    tokens += n;
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeStories260k)
    ->ArgNames({"threads", "batch"})
    ->Args({1, 1})
    ->Args({2, 1})
    ->Args({1, 16})
    ->Args({2, 16})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
