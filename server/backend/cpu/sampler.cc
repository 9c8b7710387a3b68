#include "server/backend/cpu/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/sampling.h"
#include "server/common/status.h"

namespace kaon {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Better-first order shared by sampling and logprobs: higher value, then the
// lower id, so results never depend on sort stability or backend.
struct Better {
  const float* value;
  bool operator()(int32_t a, int32_t b) const {
    return value[a] > value[b] || (value[a] == value[b] && a < b);
  }
};

}  // namespace

Sampler::Sampler(int64_t vocab_size)
    : vocab_size_(vocab_size),
      work_(vocab_size),
      weight_(vocab_size),
      order_(vocab_size),
      counts_(vocab_size, 0),
      seen_(vocab_size, 0) {
  KAON_CHECK(vocab_size > 0 && vocab_size <= std::numeric_limits<int32_t>::max()) << vocab_size;
  touched_.reserve(vocab_size);  // at most one entry per distinct id
}

void Sampler::Logprobs(const float* logits, int32_t token, int32_t k, float* token_logprob,
                       std::vector<TokenLogprob>* top) {
  const int64_t v = vocab_size_;
  float max_logit = kNegInf;
  for (int64_t i = 0; i < v; ++i) max_logit = std::max(max_logit, logits[i]);
  // Sum in double: 152k terms in float lose about 3 digits.
  double sum = 0.0;
  for (int64_t i = 0; i < v; ++i) sum += std::exp(static_cast<double>(logits[i]) - max_logit);
  const double lse = max_logit + std::log(sum);
  if (token_logprob != nullptr) {
    KAON_CHECK(token >= 0 && token < v) << "logprob token " << token << " outside vocab " << v;
    *token_logprob = static_cast<float>(logits[token] - lse);
  }
  if (top == nullptr) return;
  top->clear();
  if (k <= 0) return;
  // k <= 20: one pass keeping a small sorted list beats sorting the vocab;
  // after the first few hundred ids almost every logit fails the first test.
  const Better better{logits};
  const size_t kk = static_cast<size_t>(std::min<int64_t>(k, v));
  top->reserve(kk);
  for (int64_t i = 0; i < v; ++i) {
    const int32_t id = static_cast<int32_t>(i);
    if (top->size() == kk && !better(id, top->back().token)) continue;
    if (top->size() == kk) top->pop_back();
    auto pos = std::upper_bound(top->begin(), top->end(), id, [&](int32_t a, const TokenLogprob& b) {
      return better(a, b.token);
    });
    top->insert(pos, TokenLogprob{id, 0.0f});
  }
  for (TokenLogprob& t : *top) t.logprob = static_cast<float>(logits[t.token] - lse);
}

void Sampler::ApplyPenalties(const SampleContext& ctx, int32_t n) {
  const SamplingParams& p = *ctx.params;
  auto check = [&](int32_t id) {
    KAON_CHECK(id >= 0 && id < vocab_size_) << "token id " << id << " outside vocab " << vocab_size_;
  };
  if (p.repetition_penalty != 1.0f) {
    // Once per distinct id of prompt ∪ output, as vLLM's prompt/output masks.
    touched_.clear();
    for (auto ids : {ctx.prompt_ids, ctx.output_ids}) {
      for (int32_t id : ids) {
        check(id);
        if (!seen_[id]) {
          seen_[id] = 1;
          touched_.push_back(id);
        }
      }
    }
    const float rp = p.repetition_penalty;
    for (int32_t id : touched_) {
      seen_[id] = 0;
      if (id >= n) continue;
      float& l = work_[id];
      l = l > 0.0f ? l / rp : l * rp;
    }
  }
  if (p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) {
    touched_.clear();
    for (int32_t id : ctx.output_ids) {
      check(id);
      if (counts_[id]++ == 0) touched_.push_back(id);
    }
    for (int32_t id : touched_) {
      if (id < n) {
        // Two steps, as vLLM: subtract frequency * count, then presence.
        work_[id] -= p.frequency_penalty * static_cast<float>(counts_[id]);
        work_[id] -= p.presence_penalty;
      }
      counts_[id] = 0;
    }
  }
}

void Sampler::ExtendSorted(int64_t count, int64_t end) {
  if (count <= sorted_) return;
  int32_t* first = order_.data() + sorted_;
  int32_t* mid = order_.data() + count;
  int32_t* last = order_.data() + end;
  const Better better{work_.data()};
  // Everything in [sorted_, end) ranks below the sorted prefix, so selecting
  // and sorting the next block extends it; the probability mass of real
  // models sits in the first few blocks, so most steps never sort the vocab.
  if (mid < last) std::nth_element(first, mid, last, better);
  std::sort(first, mid, better);
  sorted_ = count;
}

int32_t Sampler::DrawRandom(const SampleContext& ctx, int32_t n) {
  const SamplingParams& p = *ctx.params;
  float max_logit = kNegInf;
  for (int32_t i = 0; i < n; ++i) max_logit = std::max(max_logit, work_[i]);
  // Everything masked, or a logit overflowed to +inf: nothing to normalise,
  // so take the argmax (lowest id among the best).
  if (!std::isfinite(max_logit)) return kernels::cpu::Argmax(work_.data(), n);

  // Temperature and min_p in one pass. min_p compares each probability with
  // min_p times the top one's, which after temperature is exp((l - max) / T)
  // against min_p. Zero-weight tokens can never be drawn, so they are dropped.
  const float t = p.temperature;
  const float min_p = p.min_p;
  int64_t num = 0;
  for (int32_t i = 0; i < n; ++i) {
    const float l = work_[i];
    if (!(l > kNegInf)) continue;  // masked (or NaN)
    const float w = std::exp((l - max_logit) / t);
    if (w <= 0.0f || w < min_p) continue;
    weight_[i] = w;
    order_[num++] = i;
  }
  sorted_ = 0;
  int64_t keep = num;
  if (p.top_k > 0 && p.top_k < num) {
    ExtendSorted(p.top_k, num);
    keep = p.top_k;
  }
  double total = 0.0;
  for (int64_t i = 0; i < keep; ++i) total += weight_[order_[i]];

  // Walks the kept tokens best first, sorting lazily in growing blocks.
  auto weight_at = [&](int64_t i) {
    if (i >= sorted_) ExtendSorted(std::min(keep, std::max<int64_t>(2 * sorted_, 64)), keep);
    return static_cast<double>(weight_[order_[i]]);
  };
  if (p.top_p < 1.0f) {
    // vLLM keeps a token while the mass strictly above it is below top_p.
    const double threshold = static_cast<double>(p.top_p) * total;
    double cum = 0.0;
    int64_t i = 0;
    while (i < keep && cum < threshold) cum += weight_at(i++);
    keep = i;
    total = cum;
  }
  const float u = kernels::cpu::Philox4x32::Uniform(ctx.seed, static_cast<uint64_t>(ctx.sample_index),
                                                    static_cast<uint64_t>(ctx.output_position));
  const double target = static_cast<double>(u) * total;
  double cum = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    cum += weight_at(i);
    if (target < cum) return order_[i];
  }
  return order_[keep - 1];  // only reached through rounding of `total`
}

SampleResult Sampler::Sample(const float* logits, const SampleContext& ctx) {
  KAON_CHECK(ctx.params != nullptr);
  const SamplingParams& p = *ctx.params;
  KAON_CHECK(ctx.sampleable_vocab > 0 && ctx.sampleable_vocab <= vocab_size_)
      << "sampleable_vocab " << ctx.sampleable_vocab << " not in [1, " << vocab_size_ << "]";
  // Ids at or above sampleable_vocab are masked by never being looked at.
  const int32_t n = ctx.sampleable_vocab;
  std::copy(logits, logits + n, work_.begin());

  if (ctx.output_position < p.min_tokens) {
    auto mask = [&](int32_t id) {
      if (id >= 0 && id < n) work_[id] = kNegInf;
    };
    if (!p.ignore_eos) {
      for (int32_t id : ctx.eos_ids) mask(id);
    }
    for (int32_t id : p.stop_token_ids) mask(id);
  }
  for (const auto& [id, bias] : p.logit_bias) {
    if (id >= 0 && id < n) work_[id] += bias;
  }
  ApplyPenalties(ctx, n);

  SampleResult result{};
  result.token = p.greedy() ? kernels::cpu::Argmax(work_.data(), n) : DrawRandom(ctx, n);
  if (p.logprobs >= 0) Logprobs(logits, result.token, p.logprobs, &result.logprob, &result.top);
  return result;
}

}  // namespace kaon
