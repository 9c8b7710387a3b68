// CPU decode throughput of one sequence on the bundled stories260k model:
// each iteration generates 128 greedy tokens after a short prompt, so the
// rate is dominated by decode steps over a growing paged KV cache.
#include <benchmark/benchmark.h>

#include "server/engine/offline_engine.h"

namespace {

void BM_DecodeStories260k(benchmark::State& state) {
  kaon::EngineOptions options;
  options.num_threads = static_cast<int>(state.range(0));
  auto engine = kaon::OfflineEngine::Create(std::string(KAON_SOURCE_DIR) + "/models/stories260k", options);
  if (!engine.ok()) {
    state.SkipWithError(std::string(engine.status().message()).c_str());
    return;
  }
  kaon::GenerateRequest request;
  request.prompt_ids = {1, 403, 407, 261, 378};
  request.max_tokens = 128;
  request.ignore_eos = true;
  request.sampling.temperature = 0.0f;
  int64_t tokens = 0;
  for (auto _ : state) {
    auto result = (*engine)->Generate(request);
    if (!result.ok()) {
      state.SkipWithError(std::string(result.status().message()).c_str());
      return;
    }
    tokens += static_cast<int64_t>(result->token_ids.size());
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeStories260k)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
