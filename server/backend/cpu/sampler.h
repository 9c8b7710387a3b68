// The CPU sampler: logits rows → tokens with the semantics of
// server/backend/sampling.h. Draws come from Philox keyed by the request's
// seed and counted by (sample_index, output_position), so a seeded request
// samples the same tokens alone, batched, or after preemption.
//
// Nothing sorts the vocabulary: one fused pass finds the max (and, with top_k,
// the k best), a second pass where needed computes the softmax mass and keeps
// only the tokens that can still be reached; those few are sorted. See
// sampler.cc for why each cut-off is safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "server/backend/sampling.h"

namespace kaon {

namespace kernels::cpu {
class ThreadPool;
}

class RowSampler;  // per-thread scratch and the per-row pipeline (sampler.cc)

// Owns per-thread scratch sized once for the vocabulary, so steady-state calls
// allocate nothing except SampleResult::top. Not thread-safe: one caller.
class CpuSampler {
 public:
  // `pool` may be null (rows run on the caller).
  CpuSampler(int64_t vocab_size, kernels::cpu::ThreadPool* pool);
  ~CpuSampler();
  CpuSampler(const CpuSampler&) = delete;
  CpuSampler& operator=(const CpuSampler&) = delete;

  int64_t vocab_size() const { return vocab_size_; }

  // What a sampler for this vocabulary and thread count holds (per-thread
  // scratch, sized once), for the memory plan; scratch_bytes() is this
  // sampler's, from its buffers' actual capacities.
  static int64_t ScratchBytes(int64_t vocab_size, int num_threads);
  int64_t scratch_bytes() const;

  // `logits` is [rows.size(), vocab_size] and is used as scratch (overwritten
  // in place by masks and penalties). Ids >= sampleable_vocab (a padded LM
  // head) are never drawn; it must be in [1, vocab_size] (checked). out[i] is
  // rows[i]'s result.
  void Sample(float* logits, int32_t sampleable_vocab, std::span<const SamplingRow> rows, SampleResult* out);

  // log_softmax of raw logits (all vocab_size ids), for prompt logprobs:
  // `token`'s logprob and the top `k` alternatives (cleared first; empty when
  // k <= 0), highest first, ties lower id first.
  void Logprobs(const float* logits, int32_t token, int32_t k, float* token_logprob,
                std::vector<TokenLogprob>* top);

  // Test-only: the cut-offs below only decide how much work is done, never
  // the result; tests shrink them to drive the rarely taken exact fallbacks.
  struct Tuning {
    double cutoff_scale = 1.0;  // > 1 raises the candidate cut-off (more fallbacks)
    int32_t topk_slack = 0;  // extra top-k candidates held before compacting; 0: max(256, k)
    bool baseline_kernels = false;  // SSE2 kernels even where AVX2 runs
    int32_t flat_candidates = 4096;  // candidates past which a row is bucketed (DrawFlat)
    int32_t flat_buckets = 2048;     // buckets of a flat row
  };
  void set_tuning_for_test(const Tuning& tuning);

 private:
  int64_t vocab_size_;
  kernels::cpu::ThreadPool* pool_;
  std::vector<std::unique_ptr<RowSampler>> threads_;
};

}  // namespace kaon
