// The CPU sampler: one row of logits → one token, following vLLM v1's
// pipeline (see Sampler::Sample). Draws come from Philox keyed by the
// request's seed and counted by (sample_index, output_position), so a seeded
// request samples the same tokens alone, batched, or after preemption.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "server/engine/sampling_params.h"

namespace kaon {

struct TokenLogprob {
  int32_t token;
  float logprob;
};

struct SampleResult {
  int32_t token;
  // Of the sampled token under log_softmax(raw logits) (vLLM's default "raw
  // logprobs"). Only computed when params.logprobs >= 0 (it costs a pass over
  // the vocabulary); 0 otherwise.
  float logprob;
  // Top `logprobs` alternatives (raw), highest first, ties lower id first;
  // empty if logprobs <= 0.
  std::vector<TokenLogprob> top;
};

// Everything the sampler needs for one row.
struct SampleContext {
  const SamplingParams* params;
  uint64_t seed;                        // resolved seed
  int64_t output_position;              // index of the token being sampled among this request's outputs
  int32_t sample_index = 0;             // for n>1 children (Philox counter word)
  std::span<const int32_t> prompt_ids;
  std::span<const int32_t> output_ids;  // tokens generated so far
  std::span<const int32_t> eos_ids;     // ignored if ignore_eos; masked while under min_tokens
  // Ids >= this (tokenizer vocab < model vocab_size, e.g. Qwen2.5 151665 vs
  // 152064) are never sampled. Must be in [1, vocab_size]; checked.
  int32_t sampleable_vocab;
};

// Owns scratch sized once for the vocabulary, so steady-state calls do not
// allocate (except SampleResult::top). One per engine thread; not thread-safe.
class Sampler {
 public:
  explicit Sampler(int64_t vocab_size);

  int64_t vocab_size() const { return vocab_size_; }

  // `logits` holds vocab_size raw values (not modified). Order, as vLLM v1:
  //   raw logprobs (if requested) → ids >= sampleable_vocab masked →
  //   min_tokens masking → logit_bias → repetition penalty →
  //   frequency/presence penalties → greedy argmax (lowest id on ties), or:
  //   temperature → min_p → top_k → top_p → inverse-CDF draw with
  //   u = Philox4x32::Uniform(seed, sample_index, output_position) over the
  //   kept tokens sorted by probability (descending, lower id first on ties).
  SampleResult Sample(const float* logits, const SampleContext& ctx);

  // log_softmax of raw logits (all vocab_size ids), for prompt logprobs:
  // `token`'s logprob and the top `k` alternatives (cleared first; empty when
  // k <= 0), highest first, ties lower id first.
  void Logprobs(const float* logits, int32_t token, int32_t k, float* token_logprob,
                std::vector<TokenLogprob>* top);

 private:
  void ApplyPenalties(const SampleContext& ctx, int32_t n);
  int32_t DrawRandom(const SampleContext& ctx, int32_t n);
  // Makes order_[0, count) sorted (best first) given that order_[0, sorted_)
  // already is and precedes everything after it.
  void ExtendSorted(int64_t count, int64_t num_candidates);

  int64_t vocab_size_;
  std::vector<float> work_;     // processed logits, by id
  std::vector<float> weight_;   // unnormalised probabilities, by id
  std::vector<int32_t> order_;  // candidate ids
  int64_t sorted_ = 0;          // length of the sorted prefix of order_
  std::vector<int32_t> counts_; // output-token occurrences, by id (zero between calls)
  std::vector<uint8_t> seen_;   // prompt ∪ output membership, by id (zero between calls)
  std::vector<int32_t> touched_;
};

}  // namespace kaon
