// Per-request sampling parameters, with vLLM's meanings and ranges. The front
// ends (OpenAI server, gRPC, CLI) fill this struct and check it once with
// api::CheckSamplingParams (server/api/request_rules.h); the engine and the
// sampler then trust it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "server/backend/sampling.h"
#include "server/loading/model_config.h"

namespace kaon {

struct SamplingParams {
  int32_t n = 1;
  int32_t best_of = 0;             // 0 = n; else best_of candidates, the n most likely returned
  float temperature = 1.0f;        // 0 (below 1e-5, as vLLM) = greedy
  int32_t top_k = 0;               // 0 or -1 = off
  float top_p = 1.0f;
  float min_p = 0.0f;
  float presence_penalty = 0.0f;   // OpenAI semantics, on output tokens only
  float frequency_penalty = 0.0f;  // OpenAI semantics, on output tokens only
  float repetition_penalty = 1.0f; // HF/vLLM semantics: prompt AND output tokens; logit>0 → /p, else *p
  std::vector<std::pair<int32_t, float>> logit_bias;
  std::optional<uint64_t> seed;    // unseeded: the engine assigns a random one
  int32_t logprobs = -1;           // -1 none; k ≥ 0: sampled token's logprob + top-k alternatives (k ≤ 20)
  int32_t prompt_logprobs = -1;
  int64_t max_tokens = 16;
  int64_t min_tokens = 0;          // EOS and stop_token_ids masked (-inf) until min_tokens generated
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop;   // stop strings (handled by the output processor, not the sampler)
  bool ignore_eos = false;
  bool include_stop_str_in_output = false;
  bool skip_special_tokens = true;

  // Most alternatives a request may ask for (vLLM's default max_logprobs).
  static constexpr int32_t kMaxLogprobs = kMaxSampleTopLogprobs;
  // Most candidates (n or best_of) one request may fan out to.
  static constexpr int32_t kMaxChoices = 128;
  int32_t num_candidates() const { return best_of > n ? best_of : n; }

  // Temperatures this small are treated as greedy (vLLM's _SAMPLING_EPS):
  // dividing by them would overflow the logits.
  static constexpr float kGreedyEpsilon = 1e-5f;
  bool greedy() const { return temperature < kGreedyEpsilon; }
};

// The model's generation_config.json sampling defaults (temperature, top_p,
// top_k, min_p, repetition_penalty) written over vLLM's. Every front end
// (HTTP, gRPC, `kaon generate`) calls it before reading the request's own
// fields, so a field the request sets wins and an unset one behaves the same
// everywhere. max_new_tokens and do_sample are not applied (as the CLI never
// did): max_tokens keeps the API's defaults.
void ApplyGenerationDefaults(const GenerationDefaults& defaults, SamplingParams* params);

}  // namespace kaon
