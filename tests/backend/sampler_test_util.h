// Shared by the sampler tests: a request's view of the CPU sampler (as the
// model runner builds its rows), random logits, and the brute-force
// reference the sampler must match token for token.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <span>
#include <vector>

#include "kernels/cpu/sampling.h"
#include "server/backend/cpu/sampler.h"
#include "server/backend/sampling.h"
#include "server/engine/sampling_rows.h"

namespace kaon::sampler_testing {

// One request's view of the sampler, as the model runner builds its row:
// SamplingParams through MakeSamplingRow / AppendBannedIds, one row at a time.
struct RequestContext {
  const SamplingParams* params;
  uint64_t seed;
  int64_t output_position;  // outputs so far (output_ids, when given, must have this many)
  int32_t sample_index = 0;
  std::span<const int32_t> prompt_ids;
  std::span<const int32_t> output_ids;
  std::span<const int32_t> eos_ids;
  int32_t sampleable_vocab;
};

class RequestSampler {
 public:
  explicit RequestSampler(int64_t vocab) : vocab_(vocab), copy_(vocab) {}

  SampleResult Sample(const float* logits, const RequestContext& ctx) {
    banned_.clear();
    AppendBannedIds(*ctx.params, ctx.output_position, ctx.eos_ids, &banned_);
    SamplingRow row = MakeSamplingRow(*ctx.params, ctx.seed, ctx.sample_index, ctx.prompt_ids, ctx.output_ids, banned_);
    row.output_position = ctx.output_position;
    if (sampler_ == nullptr) sampler_ = std::make_unique<CpuSampler>(vocab_, nullptr);
    std::copy(logits, logits + vocab_, copy_.begin());  // Sample works in place
    SampleResult out;
    sampler_->Sample(copy_.data(), ctx.sampleable_vocab, std::span<const SamplingRow>(&row, 1), &out);
    return out;
  }

  void Logprobs(const float* logits, int32_t token, int32_t k, float* token_logprob, std::vector<TokenLogprob>* top) {
    if (sampler_ == nullptr) sampler_ = std::make_unique<CpuSampler>(vocab_, nullptr);
    sampler_->Logprobs(logits, token, k, token_logprob, top);
  }

 private:
  int64_t vocab_;
  std::vector<float> copy_;
  std::vector<int32_t> banned_;
  std::unique_ptr<CpuSampler> sampler_;
};

// A context for `params` with no history, whole vocab sampleable.
inline RequestContext Context(const SamplingParams& params, int32_t vocab, int64_t position = 0, uint64_t seed = 1) {
  RequestContext ctx{};
  ctx.params = &params;
  ctx.seed = seed;
  ctx.output_position = position;
  ctx.sampleable_vocab = vocab;
  return ctx;
}

// Normal logits with, at random, coarse quantisation (ties), -inf entries and
// a few dominant tokens.
inline void FillLogits(std::mt19937_64& rng, float* out, int32_t vocab) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double sigma = std::vector<double>{0.3, 1.0, 2.5, 6.4}[rng() % 4];
  std::normal_distribution<double> normal(0.0, sigma);
  const bool ties = unit(rng) < 0.3, holes = unit(rng) < 0.3, spikes = unit(rng) < 0.2;
  for (int32_t i = 0; i < vocab; ++i) {
    double l = normal(rng);
    if (ties) l = std::round(l * 4.0) / 4.0;
    if (holes && unit(rng) < 0.1) l = -INFINITY;
    if (spikes && unit(rng) < 0.01) l += 4.0 * sigma;
    out[i] = static_cast<float>(l);
  }
}

// CpuSampler against a brute-force reference: the documented order, straight,
// with a full sort of the vocabulary (best first: higher logit, lower id), the
// weights SamplingWeight(l, max, 1 / T) (the documented exponential, tested
// against std::exp below) and their sums in double, in id order unless top_k
// cut (then best first).

struct Reference {
  int32_t token = 0;
  float logprob = 0.0f;
  std::vector<TokenLogprob> top;
};

inline bool Allowed(const SamplingRow& r, int32_t id) { return r.allowed == nullptr || ((r.allowed[id / 32] >> (id % 32)) & 1u); }

inline int32_t FirstArgmax(const std::vector<float>& work) {
  int32_t best = 0;
  for (int32_t i = 1; i < static_cast<int32_t>(work.size()); ++i) {
    if (work[i] > work[best]) best = i;
  }
  return best;
}

inline Reference ReferenceSample(const float* raw, int32_t vocab, int32_t n, const SamplingRow& r) {
  Reference out;
  double lse = 0.0;
  if (r.logprobs >= 0) {
    double m = -INFINITY;
    for (int32_t i = 0; i < vocab; ++i) m = std::max(m, static_cast<double>(raw[i]));
    double s = 0.0;
    for (int32_t i = 0; i < vocab; ++i) s += std::exp(static_cast<double>(raw[i]) - m);
    lse = m + std::log(s);
    std::vector<int32_t> ids(vocab);
    std::iota(ids.begin(), ids.end(), 0);
    std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return raw[a] > raw[b] || (raw[a] == raw[b] && a < b); });
    for (int32_t i = 0; i < std::min(r.logprobs, vocab); ++i) {
      out.top.push_back({ids[i], static_cast<float>(raw[ids[i]] - lse)});
    }
  }
  std::vector<float> work(raw, raw + n);
  for (int32_t i = 0; i < n; ++i) {
    if (!Allowed(r, i)) work[i] = -INFINITY;
  }
  for (int32_t id : r.banned_ids) {
    if (id >= 0 && id < n) work[id] = -INFINITY;
  }
  for (const auto& [id, bias] : r.logit_bias) {
    if (id >= 0 && id < n) work[id] += bias;
  }
  if (r.repetition_penalty != 1.0f) {
    std::vector<int32_t> seen(r.prompt_ids.begin(), r.prompt_ids.end());
    seen.insert(seen.end(), r.output_ids.begin(), r.output_ids.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int32_t id : seen) {
      if (id < n) work[id] = work[id] > 0.0f ? work[id] / r.repetition_penalty : work[id] * r.repetition_penalty;
    }
  }
  std::vector<int32_t> out_ids(r.output_ids.begin(), r.output_ids.end());
  std::sort(out_ids.begin(), out_ids.end());
  for (size_t i = 0; i < out_ids.size();) {
    size_t j = i;
    while (j < out_ids.size() && out_ids[j] == out_ids[i]) ++j;
    if (out_ids[i] < n) {
      work[out_ids[i]] -= r.frequency_penalty * static_cast<float>(j - i);
      work[out_ids[i]] -= r.presence_penalty;
    }
    i = j;
  }
  auto finish = [&](int32_t token) {
    out.token = token;
    if (r.logprobs >= 0) out.logprob = static_cast<float>(raw[token] - lse);
    return out;
  };
  if (r.greedy()) return finish(FirstArgmax(work));
  float max = -INFINITY;
  for (float l : work) max = std::max(max, l);
  if (!std::isfinite(max)) return finish(FirstArgmax(work));
  std::vector<int32_t> kept;  // id order
  std::vector<float> w(n, 0.0f);
  for (int32_t i = 0; i < n; ++i) {
    if (!(work[i] > -INFINITY)) continue;
    w[i] = SamplingWeight(work[i], max, 1.0f / r.temperature);
    if (w[i] > 0.0f && !(w[i] < r.min_p)) kept.push_back(i);
  }
  std::vector<int32_t> sorted = kept;
  std::sort(sorted.begin(), sorted.end(),
            [&](int32_t a, int32_t b) { return work[a] > work[b] || (work[a] == work[b] && a < b); });
  double total = 0.0;
  if (r.top_k > 0 && r.top_k < static_cast<int32_t>(sorted.size())) {
    sorted.resize(r.top_k);
    for (int32_t id : sorted) total += w[id];
  } else {
    for (int32_t id : kept) total += w[id];
  }
  if (r.top_p < 1.0f) {
    const double threshold = static_cast<double>(r.top_p) * total;
    double cum = 0.0;
    size_t i = 0;
    while (i < sorted.size() && cum < threshold) cum += w[sorted[i++]];
    sorted.resize(i);
    total = cum;
  }
  const float u = kernels::cpu::Philox4x32::Uniform(r.seed, static_cast<uint64_t>(r.sample_index),
                                                    static_cast<uint64_t>(r.output_position));
  const double target = static_cast<double>(u) * total;
  double cum = 0.0;
  for (int32_t id : sorted) {
    cum += w[id];
    if (target < cum) return finish(id);
  }
  return finish(sorted.back());
}

}  // namespace kaon::sampler_testing
