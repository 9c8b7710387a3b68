// The sampler through SamplingParams, one parameter at a time: each documented
// rule on small hand-made rows, seeded streams, distributions (chi-square),
// raw logprobs, min_tokens, and SamplingParams validation.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/backend/sampler_test_util.h"

namespace kaon {
namespace {

using sampler_testing::Context;
using sampler_testing::FillLogits;
using sampler_testing::Reference;
using sampler_testing::ReferenceSample;
using sampler_testing::RequestContext;
using sampler_testing::RequestSampler;

// Logits whose softmax at temperature 1 is `probs`.
std::vector<float> LogitsFromProbs(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
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

}  // namespace
}  // namespace kaon
