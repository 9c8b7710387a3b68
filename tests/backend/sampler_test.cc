#include "server/backend/cpu/sampler.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/sampling.h"
#include "kernels/cpu/thread_pool.h"
#include "server/engine/sampling_rows.h"

namespace kaon {
namespace {

// Logits whose softmax at temperature 1 is `probs`.
std::vector<float> LogitsFromProbs(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

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
RequestContext Context(const SamplingParams& params, int32_t vocab, int64_t position = 0, uint64_t seed = 1) {
  RequestContext ctx{};
  ctx.params = &params;
  ctx.seed = seed;
  ctx.output_position = position;
  ctx.sampleable_vocab = vocab;
  return ctx;
}

// Tokens drawn at positions [0, draws) with `seed`.
std::map<int32_t, int> Histogram(RequestSampler& sampler, const std::vector<float>& logits, const SamplingParams& params,
                                 int draws, uint64_t seed = 7) {
  std::map<int32_t, int> h;
  for (int i = 0; i < draws; ++i) {
    RequestContext ctx = Context(params, static_cast<int32_t>(logits.size()), i, seed);
    ++h[sampler.Sample(logits.data(), ctx).token];
  }
  return h;
}

std::set<int32_t> Support(const std::map<int32_t, int>& h) {
  std::set<int32_t> s;
  for (const auto& [id, count] : h) s.insert(id);
  return s;
}

// ---------------------------------------------------------------------------
// Greedy

TEST(SamplerTest, GreedyPicksLowestIdAmongTies) {
  RequestSampler sampler(5);
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};
  SamplingParams params;
  params.temperature = 0.0f;
  EXPECT_EQ(sampler.Sample(logits.data(), Context(params, 5)).token, 1);
  // Below vLLM's epsilon still counts as greedy, at any position or seed.
  params.temperature = 1e-6f;
  for (int pos = 0; pos < 20; ++pos) EXPECT_EQ(sampler.Sample(logits.data(), Context(params, 5, pos, pos)).token, 1);
}

// ---------------------------------------------------------------------------
// Filters alone and combined

TEST(SamplerTest, TopKAloneKeepsTheKBest) {
  RequestSampler sampler(6);
  const std::vector<float> logits = {0.1f, 0.5f, 0.4f, 0.45f, 0.0f, 0.2f};
  SamplingParams params;
  params.top_k = 3;
  EXPECT_EQ(Support(Histogram(sampler, logits, params, 3000)), (std::set<int32_t>{1, 2, 3}));
  params.top_k = 1;
  EXPECT_EQ(Support(Histogram(sampler, logits, params, 200)), (std::set<int32_t>{1}));
  // -1 and 0 both disable it.
  params.top_k = -1;
  EXPECT_EQ(Support(Histogram(sampler, logits, params, 3000)).size(), 6u);
}

TEST(SamplerTest, TopPAloneKeepsTokensWhileMassAboveIsBelowP) {
  RequestSampler sampler(4);
  const std::vector<float> logits = LogitsFromProbs({0.05, 0.5, 0.15, 0.3});
  SamplingParams params;
  params.top_p = 0.75f;  // mass above id 3 is 0.5 (kept), above id 2 is 0.8 (dropped)
  EXPECT_EQ(Support(Histogram(sampler, logits, params, 3000)), (std::set<int32_t>{1, 3}));
  params.top_p = 0.85f;  // now 0.8 < 0.85 keeps id 2 as well
  EXPECT_EQ(Support(Histogram(sampler, logits, params, 3000)), (std::set<int32_t>{1, 2, 3}));
}

TEST(SamplerTest, TopPOnAFlatVocabularyCrossesManySortBlocks) {
  // 300 equal logits: the kept set is exactly ids 0..149 (ties sort by id),
  // found by extending the lazily sorted prefix several times.
  RequestSampler sampler(300);
  const std::vector<float> logits(300, 0.25f);
  SamplingParams params;
  params.top_p = 0.5f;
  const std::map<int32_t, int> h = Histogram(sampler, logits, params, 4000);
  EXPECT_EQ(h.begin()->first, 0);
  EXPECT_EQ(h.rbegin()->first, 149);
  EXPECT_GT(h.size(), 140u);
}

TEST(SamplerTest, MinPAloneIsRelativeToTheTopProbability) {
  RequestSampler sampler(4);
  const std::vector<float> logits = LogitsFromProbs({0.15, 0.05, 0.5, 0.3});
  SamplingParams params;
  params.min_p = 0.2f;  // threshold 0.1: id 1 (0.05) goes
  EXPECT_EQ(Support(Histogram(sampler, logits, params, 3000)), (std::set<int32_t>{0, 2, 3}));
  // After temperature 0.5 the probabilities are ∝ p²: 0.0225, 0.0025, 0.25,
  // 0.09, so min_p 0.2 (threshold 0.05) keeps only ids 2 and 3.
  params.temperature = 0.5f;
  EXPECT_EQ(Support(Histogram(sampler, logits, params, 3000)), (std::set<int32_t>{2, 3}));
}

TEST(SamplerTest, MinPIsAppliedBeforeTopPAsInVllmV1) {
  RequestSampler sampler(4);
  const std::vector<float> logits = LogitsFromProbs({0.4, 0.3, 0.2, 0.1});
  SamplingParams params;
  params.min_p = 0.6f;  // threshold 0.24 keeps {0, 1}, renormalised to 4/7, 3/7
  params.top_p = 0.5f;  // 4/7 above id 1 >= 0.5: only id 0 (top_p first would keep {0, 1})
  EXPECT_EQ(Support(Histogram(sampler, logits, params, 500)), (std::set<int32_t>{0}));
}

TEST(SamplerTest, TopKThenTopPCombined) {
  RequestSampler sampler(6);
  const std::vector<float> logits = LogitsFromProbs({0.05, 0.3, 0.1, 0.25, 0.2, 0.1});
  SamplingParams params;
  params.top_k = 3;     // {1, 3, 4}: 0.3, 0.25, 0.2 → renormalised 0.4, 0.333, 0.267
  params.top_p = 0.7f;  // above id 4: 0.733 → dropped; above id 3: 0.4 → kept
  EXPECT_EQ(Support(Histogram(sampler, logits, params, 3000)), (std::set<int32_t>{1, 3}));
}

// ---------------------------------------------------------------------------
// Penalties: a competitor logit just below / above the hand-computed penalised
// value decides the greedy winner, so each formula is pinned to ±0.01.

struct PenaltyCase {
  float target_logit;
  float expected;  // penalised target logit
};

int32_t GreedyAgainst(RequestSampler& sampler, SamplingParams params, float target, float rival,
                      const std::vector<int32_t>& prompt, const std::vector<int32_t>& output) {
  params.temperature = 0.0f;
  const std::vector<float> logits = {target, rival, -50.0f};
  RequestContext ctx = Context(params, 3, static_cast<int64_t>(output.size()));
  ctx.prompt_ids = prompt;
  ctx.output_ids = output;
  return sampler.Sample(logits.data(), ctx).token;
}

void ExpectPenalised(RequestSampler& sampler, const SamplingParams& params, float target, float expected,
                     const std::vector<int32_t>& prompt, const std::vector<int32_t>& output) {
  EXPECT_EQ(GreedyAgainst(sampler, params, target, expected - 0.01f, prompt, output), 0)
      << "penalised logit below " << expected;
  EXPECT_EQ(GreedyAgainst(sampler, params, target, expected + 0.01f, prompt, output), 1)
      << "penalised logit above " << expected;
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveAndMultipliesNegativeOnPromptAndOutput) {
  RequestSampler sampler(3);
  SamplingParams params;
  params.repetition_penalty = 2.0f;
  ExpectPenalised(sampler, params, 3.0f, 1.5f, /*prompt=*/{0}, /*output=*/{});
  ExpectPenalised(sampler, params, 3.0f, 1.5f, {}, {0, 0, 0});  // once, however often it occurs
  ExpectPenalised(sampler, params, -1.0f, -2.0f, {2}, {0});
  ExpectPenalised(sampler, params, 3.0f, 3.0f, {2}, {2});  // an unseen token is untouched
}

TEST(SamplerTest, FrequencyAndPresencePenaltiesCountOutputTokensOnly) {
  RequestSampler sampler(3);
  SamplingParams params;
  params.frequency_penalty = 0.5f;
  params.presence_penalty = 0.3f;
  ExpectPenalised(sampler, params, 2.0f, 2.0f - 2 * 0.5f - 0.3f, {}, {0, 2, 0});
  ExpectPenalised(sampler, params, 2.0f, 2.0f, /*prompt=*/{0, 0}, /*output=*/{2});
  // Negative penalties encourage repetition.
  params.frequency_penalty = -1.0f;
  params.presence_penalty = -0.5f;
  ExpectPenalised(sampler, params, 1.0f, 1.0f + 3 * 1.0f + 0.5f, {}, {0, 0, 0});
  // The scratch counts are reset between calls: no history, no penalty.
  ExpectPenalised(sampler, params, 1.0f, 1.0f, {}, {});
}

TEST(SamplerTest, RepetitionThenFrequencyThenPresence) {
  RequestSampler sampler(3);
  SamplingParams params;
  params.repetition_penalty = 1.5f;
  params.frequency_penalty = 0.5f;
  params.presence_penalty = 0.25f;
  // 3 / 1.5 = 2, − 0.5 · 1 = 1.5, − 0.25 = 1.25.
  ExpectPenalised(sampler, params, 3.0f, 1.25f, {0}, {0});
}

// ---------------------------------------------------------------------------
// Bias, min_tokens, sampleable vocabulary

TEST(SamplerTest, LogitBiasForcesAndForbidsTokens) {
  RequestSampler sampler(16);
  std::vector<float> logits(16);
  for (int i = 0; i < 16; ++i) logits[i] = 0.1f * static_cast<float>(i % 5);
  SamplingParams params;
  params.logit_bias = {{7, 100.0f}};
  EXPECT_EQ(Support(Histogram(sampler, logits, params, 300)), (std::set<int32_t>{7}));
  params.temperature = 0.0f;
  EXPECT_EQ(sampler.Sample(logits.data(), Context(params, 16)).token, 7);
  // A -100 bias on the argmax removes it from greedy decoding.
  params.logit_bias = {{4, -100.0f}};
  EXPECT_EQ(sampler.Sample(logits.data(), Context(params, 16)).token, 9);
}

TEST(SamplerTest, MinTokensMasksEosAndStopIdsThenReleases) {
  RequestSampler sampler(6);
  const std::vector<float> logits = {0.0f, 1.0f, 5.0f, 0.5f, 0.2f, 4.0f};
  const std::vector<int32_t> eos = {2};
  SamplingParams params;
  params.temperature = 0.0f;
  params.min_tokens = 3;
  params.stop_token_ids = {5};
  for (int64_t pos = 0; pos < 5; ++pos) {
    RequestContext ctx = Context(params, 6, pos);
    ctx.eos_ids = eos;
    EXPECT_EQ(sampler.Sample(logits.data(), ctx).token, pos < 3 ? 1 : 2) << "position " << pos;
  }
  // Sampling obeys the mask too.
  params.temperature = 1.0f;
  for (int64_t pos = 0; pos < 300; ++pos) {
    RequestContext ctx = Context(params, 6, pos % 3, pos);
    ctx.eos_ids = eos;
    const int32_t t = sampler.Sample(logits.data(), ctx).token;
    EXPECT_NE(t, 2);
    EXPECT_NE(t, 5);
  }
  // With ignore_eos the EOS id is an ordinary token; stop ids stay masked.
  params.temperature = 0.0f;
  params.ignore_eos = true;
  RequestContext ctx = Context(params, 6, 0);
  ctx.eos_ids = eos;
  EXPECT_EQ(sampler.Sample(logits.data(), ctx).token, 2);
}

TEST(SamplerTest, IdsBeyondSampleableVocabAreNeverSampled) {
  RequestSampler sampler(8);
  const std::vector<float> logits = {0.0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 9.0f, 10.0f};
  SamplingParams params;
  params.logit_bias = {{6, 1e30f}, {7, 1e30f}};
  for (float temperature : {0.0f, 1.0f, 5.0f}) {
    params.temperature = temperature;
    for (int64_t pos = 0; pos < 500; ++pos) {
      RequestContext ctx = Context(params, 8, pos, 3);
      ctx.sampleable_vocab = 6;
      EXPECT_LT(sampler.Sample(logits.data(), ctx).token, 6) << "temperature " << temperature;
    }
  }
}

// ---------------------------------------------------------------------------
// Seeds

TEST(SamplerTest, SeededDrawsAreDeterministicAndSeedsDiffer) {
  std::vector<float> logits(64);
  for (int i = 0; i < 64; ++i) logits[i] = std::sin(static_cast<float>(i)) * 0.5f;
  SamplingParams params;
  RequestSampler a(64), b(64);
  int differ_seed = 0, differ_index = 0;
  for (int64_t pos = 0; pos < 400; ++pos) {
    const int32_t t = a.Sample(logits.data(), Context(params, 64, pos, 1234)).token;
    EXPECT_EQ(t, b.Sample(logits.data(), Context(params, 64, pos, 1234)).token);
    EXPECT_EQ(t, a.Sample(logits.data(), Context(params, 64, pos, 1234)).token);
    differ_seed += t != b.Sample(logits.data(), Context(params, 64, pos, 4321)).token;
    RequestContext child = Context(params, 64, pos, 1234);
    child.sample_index = 1;
    differ_index += t != b.Sample(logits.data(), child).token;
  }
  // With ~64 plausible tokens, independent draws agree about 1/30 of the time.
  EXPECT_GT(differ_seed, 300);
  EXPECT_GT(differ_index, 300);
}

// ---------------------------------------------------------------------------
// Distribution: chi-square goodness of fit against an independent
// double-precision computation of softmax(logits / T) → min_p → top_k → top_p.

std::vector<double> ExpectedDistribution(const std::vector<float>& logits, double t, int top_k, double top_p,
                                         double min_p) {
  const int n = static_cast<int>(logits.size());
  std::vector<int> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  std::vector<double> p(n, 0.0);
  double z = 0.0;
  for (int i = 0; i < n; ++i) z += std::exp((logits[i] - logits[ids[0]]) / t);
  for (int i = 0; i < n; ++i) p[i] = std::exp((logits[i] - logits[ids[0]]) / t) / z;
  std::vector<int> kept;
  for (int id : ids) {
    if (p[id] >= min_p * p[ids[0]]) kept.push_back(id);
  }
  if (static_cast<int>(kept.size()) > top_k) kept.resize(top_k);
  double mass = 0.0;
  for (int id : kept) mass += p[id];
  std::vector<int> nucleus;
  double above = 0.0;
  for (int id : kept) {
    if (above / mass >= top_p) break;
    nucleus.push_back(id);
    above += p[id];
  }
  std::vector<double> out(n, 0.0);
  for (int id : nucleus) out[id] = p[id] / above;
  return out;
}

TEST(SamplerTest, ChiSquareGoodnessOfFitWithAllFilters) {
  // Ids deliberately not in logit order. Sorted values: 3.0 2.8 2.6 2.3 2.1
  // 2.0 0.5 0.0 -0.5 -1.0. At T = 0.7, min_p 0.05 drops 0.5 and below, top_k 5
  // drops 2.0, and top_p 0.9 drops 2.1 (mass above it 0.9065), leaving 4.
  const std::vector<float> logits = {2.1f, -0.5f, 3.0f, 0.5f, 2.6f, 2.0f, 2.3f, -1.0f, 2.8f, 0.0f};
  SamplingParams params;
  params.temperature = 0.7f;
  params.top_k = 5;
  params.top_p = 0.9f;
  params.min_p = 0.05f;
  const std::vector<double> expected = ExpectedDistribution(logits, 0.7, 5, 0.9, 0.05);
  int support = 0;
  for (double e : expected) support += e > 0.0;
  ASSERT_EQ(support, 4) << "the test's own filter arithmetic changed";

  RequestSampler sampler(static_cast<int64_t>(logits.size()));
  constexpr int kDraws = 20000;
  std::vector<int> observed(logits.size(), 0);
  for (int i = 0; i < kDraws; ++i) {
    ++observed[sampler.Sample(logits.data(), Context(params, 10, i, 20240601)).token];
  }
  double chi2 = 0.0;
  for (size_t id = 0; id < logits.size(); ++id) {
    if (expected[id] == 0.0) {
      EXPECT_EQ(observed[id], 0) << "id " << id << " should have been filtered";
      continue;
    }
    const double e = expected[id] * kDraws;
    chi2 += (observed[id] - e) * (observed[id] - e) / e;
  }
  // 0.999 quantile of chi-square with 3 degrees of freedom.
  EXPECT_LT(chi2, 16.266);
}

TEST(SamplerTest, ChiSquarePlainTemperature) {
  const std::vector<float> logits = {0.3f, -0.2f, 1.1f, 0.0f, 0.7f, -1.5f};
  SamplingParams params;
  params.temperature = 1.3f;
  const std::vector<double> expected = ExpectedDistribution(logits, 1.3, 6, 1.0, 0.0);
  RequestSampler sampler(6);
  constexpr int kDraws = 20000;
  std::vector<int> observed(6, 0);
  for (int i = 0; i < kDraws; ++i) ++observed[sampler.Sample(logits.data(), Context(params, 6, i, 99)).token];
  double chi2 = 0.0;
  for (int id = 0; id < 6; ++id) {
    const double e = expected[id] * kDraws;
    chi2 += (observed[id] - e) * (observed[id] - e) / e;
  }
  EXPECT_LT(chi2, 20.515);  // 0.999 quantile, 5 degrees of freedom
}

// ---------------------------------------------------------------------------
// Logprobs

std::vector<double> LogSoftmax(const std::vector<float>& logits) {
  double m = -INFINITY;
  for (float l : logits) m = std::max(m, static_cast<double>(l));
  double s = 0.0;
  for (float l : logits) s += std::exp(l - m);
  std::vector<double> out;
  for (float l : logits) out.push_back(l - m - std::log(s));
  return out;
}

TEST(SamplerTest, LogprobsAreRawLogSoftmaxWithTopKInOrder) {
  constexpr int kVocab = 1000;
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(kVocab);
  for (float& l : logits) l = normal(gen);
  // A tie for first place: the lower id must come first.
  const int32_t best = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  logits[10] = logits[best];
  const std::vector<double> ref = LogSoftmax(logits);
  std::vector<int32_t> ids(kVocab);
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return ref[a] > ref[b]; });
  ASSERT_EQ(ids[0], std::min(10, best));

  SamplingParams params;
  params.logprobs = 5;
  params.logit_bias = {{3, 4.0f}};  // must not leak into the raw logprobs
  params.repetition_penalty = 1.7f;
  RequestSampler sampler(kVocab);
  for (int64_t pos = 0; pos < 20; ++pos) {
    RequestContext ctx = Context(params, kVocab, pos, 77);
    const std::vector<int32_t> history = {ids[0], 3};
    ctx.output_ids = history;
    const SampleResult r = sampler.Sample(logits.data(), ctx);
    EXPECT_NEAR(r.logprob, ref[r.token], 1e-5);
    ASSERT_EQ(r.top.size(), 5u);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(r.top[i].token, ids[i]) << "rank " << i;
      EXPECT_NEAR(r.top[i].logprob, ref[ids[i]], 1e-5);
    }
  }
  params.logprobs = 0;
  SampleResult r = sampler.Sample(logits.data(), Context(params, kVocab));
  EXPECT_TRUE(r.top.empty());
  EXPECT_NEAR(r.logprob, ref[r.token], 1e-5);
  params.logprobs = -1;
  EXPECT_TRUE(sampler.Sample(logits.data(), Context(params, kVocab)).top.empty());

  // Prompt logprobs: any token, not necessarily the best.
  float lp = 0.0f;
  std::vector<TokenLogprob> top = {{1, 1.0f}};  // cleared by the call
  sampler.Logprobs(logits.data(), 123, 3, &lp, &top);
  EXPECT_NEAR(lp, ref[123], 1e-5);
  ASSERT_EQ(top.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(top[i].token, ids[i]);
  sampler.Logprobs(logits.data(), 123, 0, &lp, &top);
  EXPECT_TRUE(top.empty());
}

// ---------------------------------------------------------------------------
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

bool Allowed(const SamplingRow& r, int32_t id) { return r.allowed == nullptr || ((r.allowed[id / 32] >> (id % 32)) & 1u); }

int32_t FirstArgmax(const std::vector<float>& work) {
  int32_t best = 0;
  for (int32_t i = 1; i < static_cast<int32_t>(work.size()); ++i) {
    if (work[i] > work[best]) best = i;
  }
  return best;
}

Reference ReferenceSample(const float* raw, int32_t vocab, int32_t n, const SamplingRow& r) {
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

// Parameter families a random row draws from.
constexpr unsigned kGreedy = 1u << 0;
constexpr unsigned kTemperature = 1u << 1;
constexpr unsigned kTopK = 1u << 2;
constexpr unsigned kTopP = 1u << 3;
constexpr unsigned kMinP = 1u << 4;
constexpr unsigned kPenalties = 1u << 5;
constexpr unsigned kBias = 1u << 6;
constexpr unsigned kBanned = 1u << 7;
constexpr unsigned kAllowed = 1u << 8;
constexpr unsigned kLogprobs = 1u << 9;
constexpr unsigned kLargeTopK = 1u << 10;

// A row's parameters and the storage its spans point into.
struct RowData {
  SamplingRow row;
  std::vector<std::pair<int32_t, float>> bias;
  std::vector<int32_t> banned, prompt, output;
  std::vector<uint32_t> allowed;

  void Bind() {
    row.logit_bias = bias;
    row.banned_ids = banned;
    row.prompt_ids = prompt;
    row.output_ids = output;
    row.allowed = allowed.empty() ? nullptr : allowed.data();
  }
};

// Normal logits with, at random, coarse quantisation (ties), -inf entries and
// a few dominant tokens.
void FillLogits(std::mt19937_64& rng, float* out, int32_t vocab) {
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

RowData MakeRow(std::mt19937_64& rng, int32_t vocab, int32_t n, unsigned f) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  auto id = [&](int32_t below) { return static_cast<int32_t>(rng() % static_cast<uint64_t>(below)); };
  RowData d;
  SamplingRow& r = d.row;
  r.temperature = (f & kGreedy) ? (unit(rng) < 0.5 ? 0.0f : 1e-6f) : (f & kTemperature) ? static_cast<float>(0.1 + 1.9 * unit(rng)) : 1.0f;
  if (f & kTopK) r.top_k = 1 + id(f & kLargeTopK ? n : 60);
  if (f & kTopP) r.top_p = unit(rng) < 0.1 ? 0.99999994f : static_cast<float>(0.05 + 0.94 * unit(rng));
  if (f & kMinP) r.min_p = static_cast<float>(unit(rng) < 0.2 ? 1e-6 : 0.5 * unit(rng));
  if (f & kPenalties) {
    r.repetition_penalty = static_cast<float>(0.5 + 1.5 * unit(rng));
    r.frequency_penalty = static_cast<float>(2.0 * unit(rng) - 1.0);
    r.presence_penalty = static_cast<float>(2.0 * unit(rng) - 1.0);
    const int32_t hot = 1 + id(std::min(vocab, 40));  // repeats are common
    for (int i = id(60); i > 0; --i) d.prompt.push_back(unit(rng) < 0.5 ? id(hot) : id(vocab));
    for (int i = id(60); i > 0; --i) d.output.push_back(unit(rng) < 0.5 ? id(hot) : id(vocab));
  }
  if (f & kBias) {
    for (int i = 1 + id(6); i > 0; --i) {
      d.bias.emplace_back(id(vocab), unit(rng) < 0.1 ? 100.0f : static_cast<float>(20.0 * unit(rng) - 10.0));
    }
  }
  if (f & kBanned) {
    for (int i = 1 + id(8); i > 0; --i) d.banned.push_back(id(vocab + 4) - 2);  // some out of range
  }
  if (f & kAllowed) {
    const double density = std::vector<double>{0.02, 0.5, 0.95}[rng() % 3];
    d.allowed.assign((vocab + 31) / 32, 0u);
    for (int32_t i = 0; i < vocab; ++i) {
      if (unit(rng) < density) d.allowed[i / 32] |= 1u << (i % 32);
    }
  }
  if (f & kLogprobs) r.logprobs = id(21);
  r.seed = rng();
  r.sample_index = id(4);
  r.output_position = id(1000);
  return d;
}

kernels::cpu::ThreadPool& TwoThreads() {
  static kernels::cpu::ThreadPool pool(2);
  return pool;
}

struct Batch {
  int32_t vocab = 0, n = 0;
  std::vector<float> logits;  // [rows, vocab], kept raw
  std::vector<RowData> rows;
  std::vector<SamplingRow> table;
};

Batch MakeBatch(std::mt19937_64& rng, unsigned f, int rows, int32_t min_vocab, int32_t max_vocab) {
  Batch b;
  b.vocab = min_vocab + static_cast<int32_t>(rng() % static_cast<uint64_t>(max_vocab - min_vocab + 1));
  b.n = rng() % 3 == 0 ? b.vocab - static_cast<int32_t>(rng() % static_cast<uint64_t>(b.vocab / 4 + 1)) : b.vocab;
  b.logits.resize(static_cast<size_t>(rows) * b.vocab);
  b.rows.reserve(rows);
  for (int i = 0; i < rows; ++i) {
    FillLogits(rng, b.logits.data() + static_cast<size_t>(i) * b.vocab, b.vocab);
    b.rows.push_back(MakeRow(rng, b.vocab, b.n, f));
  }
  for (RowData& d : b.rows) {
    d.Bind();
    b.table.push_back(d.row);
  }
  return b;
}

std::vector<SampleResult> RunBatch(const Batch& b, kernels::cpu::ThreadPool* pool, const CpuSampler::Tuning& tuning = {}) {
  CpuSampler sampler(b.vocab, pool);
  sampler.set_tuning_for_test(tuning);
  std::vector<float> scratch = b.logits;  // Sample overwrites it
  std::vector<SampleResult> out(b.table.size());
  sampler.Sample(scratch.data(), b.n, b.table, out.data());
  return out;
}

// Rows of `f` against the reference; returns how many tokens differed. Two
// threads share the rows (the reference's full sorts dominate the time), each
// with its own pool for the batches that run on two threads.
int CompareWithReference(unsigned f, int rows, const CpuSampler::Tuning& tuning = {}, int32_t min_vocab = 64,
                         int32_t max_vocab = 1000) {
  constexpr int kBatch = 16;
  std::atomic<int> mismatches{0};
  auto run = [&](int half) {
    std::mt19937_64 rng(0x5EED0000u + 2 * f + half);
    kernels::cpu::ThreadPool pool(2);
    for (int done = half * kBatch; done < rows; done += 2 * kBatch) {
      const Batch b = MakeBatch(rng, f, kBatch, min_vocab, max_vocab);
      const std::vector<SampleResult> got = RunBatch(b, (done / kBatch) % 4 < 2 ? &pool : nullptr, tuning);
      for (int i = 0; i < kBatch; ++i) {
        const Reference want =
            ReferenceSample(b.logits.data() + static_cast<size_t>(i) * b.vocab, b.vocab, b.n, b.table[i]);
        if (got[i].token != want.token) {
          if (++mismatches <= 5) {
            ADD_FAILURE() << "features " << f << " row " << done + i << ": token " << got[i].token << ", reference "
                          << want.token;
          }
          continue;
        }
        EXPECT_LT(got[i].token, b.n);
        if (b.table[i].logprobs < 0) continue;
        if (std::isfinite(want.logprob)) {
          EXPECT_NEAR(got[i].logprob, want.logprob, 1e-4) << "row " << done + i;
        } else {
          EXPECT_EQ(got[i].logprob, want.logprob) << "row " << done + i;
        }
        EXPECT_EQ(got[i].top.size(), want.top.size()) << "row " << done + i;
        for (size_t k = 0; k < std::min(want.top.size(), got[i].top.size()); ++k) {
          EXPECT_EQ(got[i].top[k].token, want.top[k].token) << "row " << done + i << " rank " << k;
          if (std::isfinite(want.top[k].logprob)) {
            EXPECT_NEAR(got[i].top[k].logprob, want.top[k].logprob, 1e-4);
          }
        }
      }
    }
  };
  std::thread other(run, 1);
  run(0);
  other.join();
  return mismatches.load();
}

constexpr int kRows = 10000;

TEST(CpuSamplerTest, GreedyMatchesReference) { EXPECT_EQ(CompareWithReference(kGreedy, kRows), 0); }
TEST(CpuSamplerTest, TemperatureMatchesReference) { EXPECT_EQ(CompareWithReference(kTemperature, kRows), 0); }
TEST(CpuSamplerTest, TopKMatchesReference) { EXPECT_EQ(CompareWithReference(kTemperature | kTopK, kRows), 0); }
TEST(CpuSamplerTest, LargeTopKMatchesReference) {
  EXPECT_EQ(CompareWithReference(kTemperature | kTopK | kLargeTopK, kRows), 0);
}
TEST(CpuSamplerTest, TopPMatchesReference) { EXPECT_EQ(CompareWithReference(kTemperature | kTopP, kRows), 0); }
TEST(CpuSamplerTest, MinPMatchesReference) { EXPECT_EQ(CompareWithReference(kTemperature | kMinP, kRows), 0); }
TEST(CpuSamplerTest, TopKTopPMatchesReference) {
  EXPECT_EQ(CompareWithReference(kTemperature | kTopK | kTopP, kRows), 0);
}
TEST(CpuSamplerTest, PenaltiesMatchReference) {
  EXPECT_EQ(CompareWithReference(kPenalties | kTemperature | kTopP, kRows), 0);
  EXPECT_EQ(CompareWithReference(kPenalties | kGreedy, kRows), 0);
}
TEST(CpuSamplerTest, LogitBiasMatchesReference) { EXPECT_EQ(CompareWithReference(kBias | kTemperature | kTopK, kRows), 0); }
TEST(CpuSamplerTest, BannedIdsMatchReference) { EXPECT_EQ(CompareWithReference(kBanned | kTemperature | kMinP, kRows), 0); }
TEST(CpuSamplerTest, AllowedMaskMatchesReference) {
  EXPECT_EQ(CompareWithReference(kAllowed | kTemperature | kTopP, kRows), 0);
  EXPECT_EQ(CompareWithReference(kAllowed | kGreedy | kBias, kRows), 0);
}
TEST(CpuSamplerTest, LogprobsMatchReference) {
  EXPECT_EQ(CompareWithReference(kLogprobs | kTemperature | kPenalties | kBias | kBanned, kRows), 0);
  EXPECT_EQ(CompareWithReference(kLogprobs | kGreedy | kPenalties | kAllowed, kRows), 0);
}
TEST(CpuSamplerTest, EverythingTogetherMatchesReference) {
  const unsigned all = kTemperature | kTopK | kTopP | kMinP | kPenalties | kBias | kBanned | kAllowed | kLogprobs;
  EXPECT_EQ(CompareWithReference(all, kRows), 0);
}

TEST(CpuSamplerTest, ExactFallbacksMatchReference) {
  // A cut-off far too high leaves kept tokens outside the candidates and a
  // one-slot top-k buffer compacts at every block: the lazily appended rest
  // and the compaction must still give the reference's tokens.
  CpuSampler::Tuning tight;
  tight.cutoff_scale = 1e6;
  tight.topk_slack = 1;
  for (unsigned f : {kTemperature, kTemperature | kTopP, kTemperature | kMinP, kTemperature | kTopK | kTopP,
                     kTemperature | kTopK | kLargeTopK, kLogprobs | kTemperature | kAllowed}) {
    EXPECT_EQ(CompareWithReference(f, kRows / 4, tight), 0) << "features " << f;
  }
}

TEST(CpuSamplerTest, LargeVocabulariesMatchReference) {
  // Many chunks: the mass cut-off rises as the pass goes and early
  // candidates are demoted; top-k compacts repeatedly.
  for (unsigned f : {kTemperature, kTemperature | kTopP, kTemperature | kTopK | kTopP | kPenalties, kGreedy | kLogprobs,
                     kTemperature | kMinP | kAllowed}) {
    EXPECT_EQ(CompareWithReference(f, 64, {}, 30000, 70000), 0) << "features " << f;
  }
}

TEST(CpuSamplerTest, FlatRowsMatchReference) {
  // Every sampled row bucketed (DrawFlat), with the default buckets, with so
  // few that each holds hundreds of tokens, and with a single bucket.
  for (int32_t buckets : {2048, 3, 1}) {
    CpuSampler::Tuning flat;
    flat.flat_candidates = 1;
    flat.flat_buckets = buckets;
    for (unsigned f : {kTemperature, kTemperature | kTopP, kTemperature | kMinP, kTemperature | kMinP | kTopP,
                       kTemperature | kTopP | kPenalties | kBias | kBanned, kTemperature | kTopP | kAllowed,
                       kLogprobs | kTemperature | kTopP}) {
      EXPECT_EQ(CompareWithReference(f, buckets == 2048 ? kRows : kRows / 4, flat), 0)
          << "features " << f << " buckets " << buckets;
    }
  }
}

TEST(CpuSamplerTest, LlamaSizedFlatRowsMatchReference) {
  // 128,256 ids, most rows flat enough at the default cut-off to be bucketed.
  for (unsigned f : {kTemperature | kTopP, kTemperature, kTemperature | kMinP | kTopP | kPenalties}) {
    EXPECT_EQ(CompareWithReference(f, 32, {}, 128256, 128256), 0) << "features " << f;
  }
}

TEST(CpuSamplerTest, SamplingWeightIsExpWithinTwoUlp) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> max(-30.0f, 30.0f), below(0.0f, 90.0f), inv_t(0.5f, 10.0f);
  int checked = 0;
  for (int i = 0; i < 200000; ++i) {
    const float m = max(rng), l = m - below(rng), s = inv_t(rng);
    const float x = (l - m) * s;
    const float got = SamplingWeight(l, m, s);
    if (x < -87.0f) {
      EXPECT_EQ(got, 0.0f) << x;
      continue;
    }
    const double want = std::exp(static_cast<double>(x));
    const double ulp = std::nextafter(static_cast<float>(want), INFINITY) - static_cast<float>(want);
    ASSERT_LE(std::abs(got - want), 2.0 * ulp) << "x " << x;
    ++checked;
  }
  EXPECT_GT(checked, 1000);
  EXPECT_EQ(SamplingWeight(3.0f, 3.0f, 1.0f), 1.0f);
  EXPECT_EQ(SamplingWeight(-INFINITY, 3.0f, 1.0f), 0.0f);
  EXPECT_EQ(SamplingWeight(NAN, 3.0f, 1.0f), 0.0f);
}

TEST(CpuSamplerTest, ScratchBytesPlanMatchesTheBuffers) {
  for (int64_t vocab : {1, 512, 128256, 152064}) {
    for (int threads : {1, 2}) {
      kernels::cpu::ThreadPool pool(threads);
      const CpuSampler sampler(vocab, threads > 1 ? &pool : nullptr);
      EXPECT_EQ(sampler.scratch_bytes(), CpuSampler::ScratchBytes(vocab, threads)) << vocab << " x " << threads;
    }
  }
  EXPECT_GT(CpuSampler::ScratchBytes(128256, 1), 128256 * 20);  // it is not small at Llama 3's vocabulary
}

TEST(CpuSamplerTest, BaselineKernelsGiveIdenticalResults) {
  // The SSE2 and AVX2 builds of the row kernels must agree bit for bit.
  CpuSampler::Tuning baseline, flat, flat_baseline;
  baseline.baseline_kernels = true;
  flat.flat_candidates = 1;
  flat_baseline = flat;
  flat_baseline.baseline_kernels = true;
  std::mt19937_64 rng(11);
  for (unsigned f : {kGreedy | kAllowed, kTemperature | kTopP | kLogprobs, kTemperature | kTopK | kPenalties,
                     kTemperature | kMinP | kBias, kTemperature | kTopP | kAllowed}) {
    for (int rep = 0; rep < 40; ++rep) {
      const Batch b = MakeBatch(rng, f, 16, 64, 5000);
      const bool bucketed = rep % 2 == 1;  // DrawFlat's kernels too
      const std::vector<SampleResult> fast = RunBatch(b, nullptr, bucketed ? flat : CpuSampler::Tuning{}),
                                      base = RunBatch(b, nullptr, bucketed ? flat_baseline : baseline);
      for (size_t i = 0; i < fast.size(); ++i) {
        EXPECT_EQ(fast[i].token, base[i].token);
        EXPECT_EQ(fast[i].logprob, base[i].logprob);
        ASSERT_EQ(fast[i].top.size(), base[i].top.size());
        for (size_t k = 0; k < fast[i].top.size(); ++k) EXPECT_EQ(fast[i].top[k].logprob, base[i].top[k].logprob);
      }
    }
  }
}

TEST(CpuSamplerTest, SeededRowsRepeatAndSampleIndexChangesDraws) {
  std::mt19937_64 rng(3);
  int differ = 0, total = 0;
  for (int rep = 0; rep < 50; ++rep) {
    Batch b = MakeBatch(rng, kTemperature, 32, 200, 400);
    const std::vector<SampleResult> first = RunBatch(b, &TwoThreads());
    const std::vector<SampleResult> again = RunBatch(b, nullptr);
    for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(first[i].token, again[i].token);
    for (RowData& d : b.rows) ++d.row.sample_index;
    for (size_t i = 0; i < b.rows.size(); ++i) b.table[i] = b.rows[i].row;
    const std::vector<SampleResult> child = RunBatch(b, nullptr);
    for (size_t i = 0; i < first.size(); ++i) {
      differ += first[i].token != child[i].token;
      ++total;
    }
  }
  EXPECT_GT(differ, total / 10);
}

TEST(CpuSamplerTest, RowsGiveTheSameTokenAloneAndInABatch) {
  std::mt19937_64 rng(4);
  const unsigned all = kTemperature | kTopK | kTopP | kMinP | kPenalties | kBias | kAllowed | kLogprobs;
  for (int rep = 0; rep < 20; ++rep) {
    const Batch b = MakeBatch(rng, rep % 2 ? all : kTemperature | kTopP, 64, 500, 3000);
    for (kernels::cpu::ThreadPool* pool : {static_cast<kernels::cpu::ThreadPool*>(nullptr), &TwoThreads()}) {
      const std::vector<SampleResult> batched = RunBatch(b, pool);
      CpuSampler alone(b.vocab, pool);
      for (size_t i = 0; i < b.table.size(); ++i) {
        std::vector<float> row(b.logits.begin() + static_cast<int64_t>(i) * b.vocab,
                               b.logits.begin() + static_cast<int64_t>(i + 1) * b.vocab);
        SampleResult one;
        alone.Sample(row.data(), b.n, std::span<const SamplingRow>(&b.table[i], 1), &one);
        EXPECT_EQ(one.token, batched[i].token);
        EXPECT_EQ(one.logprob, batched[i].logprob);
      }
    }
  }
}

TEST(CpuSamplerTest, PromptLogprobsMatchReference) {
  std::mt19937_64 rng(5);
  for (int rep = 0; rep < 2000; ++rep) {
    const int32_t vocab = 64 + static_cast<int32_t>(rng() % 937);
    std::vector<float> logits(vocab);
    FillLogits(rng, logits.data(), vocab);
    SamplingRow r;
    r.logprobs = static_cast<int32_t>(rng() % 21);
    const Reference want = ReferenceSample(logits.data(), vocab, vocab, r);  // greedy-free: temperature 1
    CpuSampler sampler(vocab, nullptr);
    const int32_t token = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
    float lp = 0.0f;
    std::vector<TokenLogprob> top = {{1, 1.0f}};
    sampler.Logprobs(logits.data(), token, r.logprobs, &lp, &top);
    if (std::isfinite(logits[token])) {
      double m = -INFINITY, s = 0.0;
      for (float l : logits) m = std::max(m, static_cast<double>(l));
      for (float l : logits) s += std::exp(l - m);
      EXPECT_NEAR(lp, logits[token] - m - std::log(s), 1e-4);
    }
    ASSERT_EQ(top.size(), want.top.size());
    for (size_t k = 0; k < top.size(); ++k) EXPECT_EQ(top[k].token, want.top[k].token);
  }
}

TEST(CpuSamplerTest, RunnerRowsBanEosAndStopIdsUnderMinTokens) {
  // The runner's mapping turns eos and stop ids into banned ids under min_tokens.
  std::mt19937_64 rng(6);
  RequestSampler sampler(500);
  std::vector<float> logits(500);
  const std::vector<int32_t> eos = {3, 7};
  for (int rep = 0; rep < 2000; ++rep) {
    FillLogits(rng, logits.data(), 500);
    for (int32_t id : {3, 7, 11}) logits[id] = 8.0f;  // make the masking matter
    SamplingParams params;
    params.temperature = rep % 3 == 0 ? 0.0f : 0.8f;
    params.top_p = 0.9f;
    params.min_tokens = 5;
    params.stop_token_ids = {11};
    params.ignore_eos = rep % 4 == 0;
    params.logprobs = 2;
    RequestContext ctx = Context(params, 480, rep % 10, rng());
    ctx.eos_ids = eos;
    const SampleResult got = sampler.Sample(logits.data(), ctx);
    std::vector<int32_t> banned;
    if (ctx.output_position < params.min_tokens) {
      if (!params.ignore_eos) banned = eos;
      banned.push_back(11);
    }
    SamplingRow r;
    r.temperature = params.temperature;
    r.top_p = params.top_p;
    r.seed = ctx.seed;
    r.output_position = ctx.output_position;
    r.logprobs = 2;
    r.banned_ids = banned;
    const Reference want = ReferenceSample(logits.data(), 500, 480, r);
    EXPECT_EQ(got.token, want.token);
    EXPECT_NEAR(got.logprob, want.logprob, 1e-4);
  }
}

// ---------------------------------------------------------------------------
// Validate

TEST(SamplingParamsTest, DefaultsAreValid) { EXPECT_TRUE(SamplingParams{}.Validate(100).ok()); }

TEST(SamplingParamsTest, ErrorsNameTheField) {
  struct Case {
    std::string field;
    void (*mutate)(SamplingParams&);
  };
  const std::vector<Case> cases = {
      {"n", [](SamplingParams& p) { p.n = 0; }},
      {"temperature", [](SamplingParams& p) { p.temperature = -0.1f; }},
      {"temperature", [](SamplingParams& p) { p.temperature = NAN; }},
      {"top_k", [](SamplingParams& p) { p.top_k = -2; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 0.0f; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 1.01f; }},
      {"min_p", [](SamplingParams& p) { p.min_p = 1.5f; }},
      {"presence_penalty", [](SamplingParams& p) { p.presence_penalty = 2.5f; }},
      {"frequency_penalty", [](SamplingParams& p) { p.frequency_penalty = -2.5f; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = 0.0f; }},
      {"logit_bias", [](SamplingParams& p) { p.logit_bias = {{100, 1.0f}}; }},
      {"logit_bias", [](SamplingParams& p) { p.logit_bias = {{-1, 1.0f}}; }},
      {"logit_bias", [](SamplingParams& p) { p.logit_bias = {{5, INFINITY}}; }},
      {"logprobs", [](SamplingParams& p) { p.logprobs = 21; }},
      {"prompt_logprobs", [](SamplingParams& p) { p.prompt_logprobs = -2; }},
      {"max_tokens", [](SamplingParams& p) { p.max_tokens = 0; }},
      {"min_tokens", [](SamplingParams& p) { p.min_tokens = -1; }},
      {"min_tokens", [](SamplingParams& p) { p.min_tokens = 17; }},
      {"stop_token_ids", [](SamplingParams& p) { p.stop_token_ids = {100}; }},
      {"stop", [](SamplingParams& p) { p.stop = {"ok", ""}; }},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.mutate(p);
    const absl::Status s = p.Validate(100);
    ASSERT_FALSE(s.ok()) << c.field;
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(s.message()).find(c.field), std::string::npos) << s.message();
  }
  SamplingParams edge;
  edge.top_k = -1;
  edge.top_p = 1.0f;
  edge.min_p = 1.0f;
  edge.logprobs = 20;
  edge.min_tokens = 16;
  edge.logit_bias = {{99, -100.0f}};
  EXPECT_TRUE(edge.Validate(100).ok()) << edge.Validate(100);
}

}  // namespace
}  // namespace kaon
