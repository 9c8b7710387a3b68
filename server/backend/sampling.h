// The sampling table every backend's Sample() reads: one plain row of
// parameters per logits row, built by the model runner from the requests'
// SamplingParams. The semantics are one for every backend; the CPU sampler
// (server/backend/cpu/sampler.h) is the reference twin.
//
// Order, as vLLM v1: raw logprobs (if requested) → ids >= sampleable_vocab
// masked → allowed-token mask (structured output) → banned ids (EOS and stop
// ids under min_tokens) → logit_bias → repetition penalty (prompt ∪ output,
// once per distinct id: logit > 0 ? l / p : l * p) → frequency then presence
// penalty (output counts) → greedy argmax (lowest id on ties), or:
// temperature → min_p → top_k → top_p (a token is kept while the mass
// strictly above it is below top_p) → inverse-CDF draw over the kept tokens
// in best-first order (higher logit, then lower id) with
// u = Philox4x32::Uniform(seed, sample_index, output_position).
//
// A token's weight is SamplingWeight(logit, max, 1 / temperature), not
// std::exp: a fixed polynomial that every lane width and every backend
// evaluates to the same bits, so a vectorised pass over the whole vocabulary
// yields exactly the weights the decisions use (no exact recomputation per
// candidate). Totals are sums of those weights in double.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "kernels/common/sampling_math.h"

namespace kaon {

struct TokenLogprob {
  int32_t token;
  float logprob;
};

struct SampleResult {
  int32_t token = 0;
  // Of the sampled token under log_softmax(raw logits) (vLLM's default "raw
  // logprobs"). Only computed when the row asks for logprobs (>= 0); 0
  // otherwise.
  float logprob = 0;
  // Top `logprobs` alternatives (raw), highest first, ties lower id first;
  // empty if logprobs <= 0.
  std::vector<TokenLogprob> top;
};

// Temperatures below this are greedy (vLLM's _SAMPLING_EPS): dividing by them
// would overflow the logits.
inline constexpr float kGreedyTemperature = 1e-5f;

// The most top logprobs a row may ask for (vLLM's default max_logprobs); a
// device backend sizes its output buffer by it.
inline constexpr int32_t kMaxSampleTopLogprobs = 20;

// exp((logit - max) * inv_temperature) with Cephes' expf polynomial (within
// 2 ulp of exp over the range used), 0 where the argument is below -87 (the
// weight would be under 2^-125) or NaN. No fused multiply-add: the CPU
// sampler's vector kernels compute the same operations in the same order (the
// sampler builds with -ffp-contract=off) and a device twin must too.
// One implementation for host and device: kernels/common/sampling_math.h.
inline float SamplingWeight(float logit, float max, float inv_temperature) {
  return kernels::sampling::SamplingWeight(logit, max, inv_temperature);
}

// One logits row. Spans point into engine state and stay valid for the call.
struct SamplingRow {
  float temperature = 1.0f;
  int32_t top_k = 0;  // 0 or -1: off
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  uint64_t seed = 0;
  int32_t sample_index = 0;     // n > 1 children: the Philox counter's high word
  int64_t output_position = 0;  // index of the token being sampled among the outputs
  int32_t logprobs = -1;        // -1: none; k >= 0: the sampled token's logprob and the top k
  std::span<const std::pair<int32_t, float>> logit_bias;
  std::span<const int32_t> banned_ids;  // masked to -inf
  std::span<const int32_t> prompt_ids;  // repetition penalty
  std::span<const int32_t> output_ids;  // repetition, frequency and presence penalties
  // Bit i % 32 of word i / 32 set: token i may be sampled. Null: every token.
  // Structured output fills it; applied before penalties and top-k/p.
  const uint32_t* allowed = nullptr;

  bool greedy() const { return temperature < kGreedyTemperature; }
};

}  // namespace kaon
