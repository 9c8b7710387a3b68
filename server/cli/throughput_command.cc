#include "server/cli/throughput_command.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "server/api/request_rules.h"
#include "server/common/status.h"

namespace kaon {
namespace {

// Consumers drain finished streams; more threads than this only add contention.
constexpr int64_t kMaxWorkers = 512;

struct Totals {
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  int64_t requests = 0;
  std::string error;
};

// Distinct random prompts over the ids the tokenizer can decode, skipping the
// first few (special tokens in the usual vocabularies).
std::vector<std::vector<int32_t>> RandomPrompts(const ThroughputFlags& f, int32_t vocab) {
  std::mt19937_64 rng(f.seed);
  const int32_t first = std::min<int32_t>(3, vocab - 1);
  std::uniform_int_distribution<int32_t> id(first, vocab - 1);
  std::vector<std::vector<int32_t>> prompts(f.num_prompts);
  for (auto& p : prompts) {
    p.resize(f.input_len);
    for (int32_t& t : p) t = id(rng);
  }
  return prompts;
}

absl::Status Run(const ThroughputFlags& f, std::ostream& out) {
  if (f.num_prompts <= 0 || f.input_len <= 0 || f.output_len <= 0 || f.max_concurrency < 0) {
    return absl::InvalidArgumentError("--num-prompts, --input-len and --output-len must be positive");
  }
  KAON_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(f.model_dir, f.engine));
  const int32_t vocab = static_cast<int32_t>(
      std::min<int64_t>(engine->info().config.vocab_size, engine->tokenizer().VocabSize()));
  const auto prompts = RandomPrompts(f, vocab);
  // Every request has the same lengths and flags, so checking the first
  // checks them all (a bad flag is refused before any work starts).
  auto params_for = [&](int64_t i) {
    SamplingParams p;
    p.max_tokens = f.output_len;
    p.ignore_eos = true;
    p.temperature = f.temperature;
    p.top_p = f.top_p;
    p.top_k = f.top_k;
    p.min_p = f.min_p;
    p.repetition_penalty = f.repetition_penalty;
    p.seed = f.seed + static_cast<uint64_t>(i);
    return p;
  };
  KAON_RETURN_IF_ERROR(api::CheckGenerationRequest(
      prompts.at(0), params_for(0), {engine->info().config.vocab_size, engine->max_model_len()}, api::RequestLimits{}));

  const int64_t workers = std::min({f.max_concurrency > 0 ? f.max_concurrency : f.num_prompts, f.num_prompts,
                                    kMaxWorkers});
  std::atomic<int64_t> next{0};
  std::mutex mu;
  Totals totals;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int64_t w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      for (int64_t i = next++; i < f.num_prompts; i = next++) {
        GenerationRequest r;
        r.prompt_ids = prompts[i];
        r.params = params_for(i);
        auto handle = engine->Submit(std::move(r));
        int64_t generated = 0;
        std::string error;
        if (!handle.ok()) {
          error = std::string(handle.status().message());
        } else {
          while (auto ev = (*handle)->Next()) {
            generated += static_cast<int64_t>(ev->token_ids.size());
            if (!ev->error.empty()) error = ev->error;
          }
        }
        std::lock_guard<std::mutex> lock(mu);
        if (!error.empty() && totals.error.empty()) totals.error = error;
        totals.prompt_tokens += f.input_len;
        totals.output_tokens += generated;
        ++totals.requests;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!totals.error.empty()) return absl::InternalError(absl::StrCat("a request failed: ", totals.error));

  const double rps = totals.requests / elapsed;
  const double out_tps = totals.output_tokens / elapsed;
  const double total_tps = (totals.prompt_tokens + totals.output_tokens) / elapsed;
  if (f.json) {
    nlohmann::ordered_json j;
    j["elapsed_time"] = elapsed;
    j["num_requests"] = totals.requests;
    j["total_num_tokens"] = totals.prompt_tokens + totals.output_tokens;
    j["num_output_tokens"] = totals.output_tokens;
    j["requests_per_second"] = rps;
    j["tokens_per_second"] = total_tps;
    j["output_tokens_per_second"] = out_tps;
    j["max_concurrency"] = workers;
    // What a device backend moves per step (0 on the CPU): host-to-device
    // metadata of the last step, and device-to-host bytes averaged over steps.
    const EngineStats stats = engine->stats();
    j["num_steps"] = stats.num_forward_calls;
    j["last_step_metadata_bytes"] = stats.last_step_metadata_bytes;
    j["device_to_host_bytes_per_step"] =
        stats.num_forward_calls > 0 ? static_cast<double>(stats.device_to_host_bytes) / stats.num_forward_calls : 0.0;
    out << j.dump() << "\n";
  } else {
    out << absl::StrFormat(
        "Throughput: %.2f requests/s, %.2f total tokens/s, %.2f output tokens/s (%d requests, concurrency %d, "
        "%.2f s)\n",
        rps, total_tps, out_tps, totals.requests, workers, elapsed);
  }
  return absl::OkStatus();
}

}  // namespace

int RunThroughputCommand(const ThroughputFlags& flags, std::ostream& out, std::ostream& err) {
  absl::Status s = Run(flags, out);
  if (!s.ok()) {
    err << "kaon throughput: " << s.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace kaon
