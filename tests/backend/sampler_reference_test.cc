// CpuSampler against the brute-force reference (sampler_test_util.h) on
// random rows of every parameter family, >= 10,000 rows each, through every
// path: candidates, the exact fallbacks, bucketed flat rows, SSE2 and AVX2,
// alone and batched, one and two threads.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/thread_pool.h"
#include "tests/backend/sampler_test_util.h"

namespace kaon {
namespace {

using sampler_testing::FillLogits;
using sampler_testing::Reference;
using sampler_testing::ReferenceSample;

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

}  // namespace
}  // namespace kaon
