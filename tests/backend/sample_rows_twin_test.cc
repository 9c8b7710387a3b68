// The device sampler's CPU twin (kernels/cpu/sample_rows) against the
// reference CPU sampler, >= 10,000 rows per parameter combination. The twin
// sums masses as 2^-44 fixed point where CpuSampler sums doubles, so a row
// may differ only where CpuSampler's decision sits within a hair of a
// boundary (a top_p threshold or the draw target against a cumulative mass);
// each differing row is checked for that and counted, and any other
// difference fails.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/common/philox.h"
#include "kernels/common/sampling_math.h"
#include "kernels/cpu/sample_rows.h"
#include "server/backend/cpu/sampler.h"
#include "tests/backend/sample_rows_test_util.h"

namespace kaon {
namespace {

using sample_rows_testing::Batch;
using sample_rows_testing::Combo;
using sample_rows_testing::Combos;
using sample_rows_testing::LogitSource;
using sample_rows_testing::MakeBatch;
using sample_rows_testing::Rng;

// How close (relative to the total in play) a CpuSampler decision may sit to
// a boundary for a differing row to count as rounding: the fixed-point sums
// are within vocab * 2^-44 of the exact ones, CpuSampler's within ~1e-8.
constexpr double kBoundaryTolerance = 1e-6;

// How far row r's decision sits from a boundary, in double, on the processed
// logits w[0, n) (the twin's work row), where the twin drew token a and
// CpuSampler token b: both must be kept (min_p, top_k), and a cumulative
// mass between them (best first) must lie within the tolerance of the top_p
// threshold or of the draw target, relative to the total in play. Infinite
// when they cannot differ by rounding.
double BoundaryMargin(const float* w, int32_t n, const SamplingRow& r, int32_t a, int32_t b) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (r.greedy()) return kInf;
  float max = -INFINITY;
  for (int32_t i = 0; i < n; ++i) max = std::max(max, w[i]);
  if (!std::isfinite(max)) return kInf;
  std::vector<std::pair<float, int32_t>> kept;  // (logit, id)
  const float inv_t = 1.0f / r.temperature;
  for (int32_t i = 0; i < n; ++i) {
    const float x = SamplingWeight(w[i], max, inv_t);
    if (x > 0.0f && !(x < r.min_p)) kept.emplace_back(w[i], i);
  }
  std::sort(kept.begin(), kept.end(), [](const auto& x, const auto& y) {
    return x.first > y.first || (x.first == y.first && x.second < y.second);
  });
  if (r.top_k > 0 && r.top_k < static_cast<int32_t>(kept.size())) kept.resize(r.top_k);
  auto find = [&](int32_t id) {
    for (size_t i = 0; i < kept.size(); ++i) {
      if (kept[i].second == id) return static_cast<int64_t>(i);
    }
    return int64_t{-1};
  };
  const int64_t pa = find(a), pb = find(b);
  if (pa < 0 || pb < 0) return kInf;
  const size_t lo = static_cast<size_t>(std::min(pa, pb)), hi = static_cast<size_t>(std::max(pa, pb)) + 1;
  std::vector<double> cum(1, 0.0);
  for (const auto& [l, id] : kept) cum.push_back(cum.back() + SamplingWeight(l, max, inv_t));
  double margin = kInf;
  auto near = [&](double target, double total) {
    for (size_t i = lo; i <= hi; ++i) margin = std::min(margin, std::fabs(cum[i] - target) / total);
  };
  double total = cum.back();
  if (r.top_p < 1.0f) {
    const double threshold = static_cast<double>(r.top_p) * total;
    near(threshold, total);
    size_t i = 0;
    while (i < kept.size() && cum[i] < threshold) ++i;
    total = cum[i];
  }
  const float u = kernels::Philox4x32Uniform(r.seed, static_cast<uint64_t>(r.sample_index),
                                             static_cast<uint64_t>(r.output_position));
  near(static_cast<double>(u) * total, total);
  return margin;
}

bool Close(float a, float b, float tol) {
  return a == b || (std::isnan(a) && std::isnan(b)) || std::fabs(a - b) <= tol;
}

struct Stats {
  int rows = 0, boundary = 0, failures = 0;
};

// `rows` rows of `combo` at (vocab, n) through CpuSampler and the twin.
Stats Compare(const Combo& combo, const LogitSource& source, int32_t n, int rows, uint64_t seed) {
  constexpr int kBatch = 512;
  const int32_t vocab = source.vocab();
  Rng rng(seed);
  CpuSampler sampler(vocab, nullptr);
  Batch b;
  std::vector<float> scratch, work;
  std::vector<SampleResult> want;
  Stats st;
  for (int done = 0; done < rows; done += kBatch) {
    const int count = std::min(kBatch, rows - done);
    MakeBatch(rng, source, n, combo.make, count, &b);
    scratch = b.logits;
    want.assign(count, SampleResult{});
    sampler.Sample(scratch.data(), n, b.rows, want.data());

    EXPECT_TRUE(PackSamplingTable(b.rows, vocab, &b.packed).ok());
    const kernels::SamplingTable table = ViewSamplingTable(b.packed, b.packed.bytes.data());
    const int32_t stride = b.packed.max_top_logprobs;
    std::vector<int32_t> tokens(count), top_ids(static_cast<size_t>(count) * stride);
    std::vector<float> logprobs(count), top_logprobs(static_cast<size_t>(count) * stride);
    work.resize(static_cast<size_t>(count) * vocab);
    const kernels::SampleOutputs out{tokens.data(), logprobs.data(), top_ids.data(), top_logprobs.data(), stride};
    const kernels::KernelStatus status =
        kernels::cpu::SampleRows(b.logits.data(), count, vocab, n, table, work.data(), out);
    EXPECT_TRUE(status.ok()) << status.message();
    for (int i = 0; i < count; ++i) {
      const SamplingRow& r = b.rows[i];
      ++st.rows;
      bool ok = true;
      if (tokens[i] != want[i].token) {
        const float* processed = work.data() + static_cast<size_t>(i) * vocab;
        const double margin = BoundaryMargin(processed, n, r, tokens[i], want[i].token);
        if (margin < kBoundaryTolerance) {
          ++st.boundary;
          continue;  // the logprob of a different token is not comparable
        }
        ok = false;
        ADD_FAILURE() << combo.name << " row " << done + i << ": twin " << tokens[i] << ", CpuSampler "
                      << want[i].token << " (boundary margin " << margin << ")";
      }
      if (r.logprobs >= 0) {
        if (!Close(logprobs[i], want[i].logprob, 1e-5f)) {
          ok = false;
          ADD_FAILURE() << combo.name << " row " << done + i << ": logprob " << logprobs[i] << " vs "
                        << want[i].logprob;
        }
        const size_t k = want[i].top.size();
        EXPECT_EQ(k, static_cast<size_t>(std::min(r.logprobs, vocab)));
        for (size_t j = 0; j < k && ok; ++j) {
          const int32_t id = top_ids[static_cast<size_t>(i) * stride + j];
          const float lp = top_logprobs[static_cast<size_t>(i) * stride + j];
          if (id != want[i].top[j].token || !Close(lp, want[i].top[j].logprob, 1e-5f)) {
            ok = false;
            ADD_FAILURE() << combo.name << " row " << done + i << " top " << j << ": " << id << " (" << lp
                          << ") vs " << want[i].top[j].token << " (" << want[i].top[j].logprob << ")";
          }
        }
      }
      st.failures += !ok;
      if (st.failures > 20) return st;  // enough to diagnose
    }
  }
  return st;
}

class TwinVsCpuSampler : public ::testing::TestWithParam<size_t> {};

TEST_P(TwinVsCpuSampler, SameTokensExceptAtRoundingBoundaries) {
  const Combo& combo = Combos()[GetParam()];
  static const LogitSource source(4096);
  const auto start = std::chrono::steady_clock::now();
  // Two threads (the CI machines have two cores), each with its own rows.
  Stats halves[2];
  std::thread other([&] { halves[1] = Compare(combo, source, 4096, 5000, 2000 + GetParam()); });
  halves[0] = Compare(combo, source, 4096, 5000, 1000 + GetParam());
  other.join();
  const Stats st{halves[0].rows + halves[1].rows, halves[0].boundary + halves[1].boundary,
                 halves[0].failures + halves[1].failures};
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ twin     ] %-18s rows %d, boundary differences %d, failures %d (%.2f s)\n", combo.name, st.rows,
              st.boundary, st.failures, seconds);
  EXPECT_EQ(st.failures, 0);
  EXPECT_LE(st.boundary, 3) << "more rounding-boundary differences than fixed-point sums explain";
}

INSTANTIATE_TEST_SUITE_P(Combos, TwinVsCpuSampler, ::testing::Range<size_t>(0, Combos().size()),
                         [](const auto& info) { return std::string(Combos()[info.param].name); });

// Some rows at a real vocabulary (Llama 3's), also with a padded LM head.
TEST(TwinVsCpuSamplerLarge, LlamaVocabulary) {
  const LogitSource source(128256);
  for (size_t c = 0; c < Combos().size(); ++c) {
    for (int32_t n : {128256, 128000}) {
      const Stats st = Compare(Combos()[c], source, n, 4, 77 + c * 2 + (n == 128000));
      EXPECT_EQ(st.failures, 0) << Combos()[c].name << " n " << n;
      EXPECT_EQ(st.boundary, 0) << Combos()[c].name << " n " << n;
    }
  }
}

// Ids >= sampleable_vocab (a padded LM head) at the test vocabulary.
TEST(TwinVsCpuSamplerLarge, SampleableBelowVocab) {
  const LogitSource source(4096);
  for (size_t c = 0; c < Combos().size(); ++c) {
    const Stats st = Compare(Combos()[c], source, 4096 - 97, 512, 300 + c);
    EXPECT_EQ(st.failures, 0) << Combos()[c].name;
    EXPECT_LE(st.boundary, 1) << Combos()[c].name;
  }
}

// Prompt logprobs: LogprobRow against CpuSampler::Logprobs.
TEST(TwinLogprobRow, MatchesCpuSampler) {
  const int32_t vocab = 4096;
  const LogitSource source(vocab);
  Rng rng(5);
  CpuSampler sampler(vocab, nullptr);
  std::vector<float> row(vocab);
  for (int i = 0; i < 2000; ++i) {
    source.Fill(rng, row.data());
    const int32_t token = rng.Below(vocab), k = rng.Below(21);
    float want = 0.0f;
    std::vector<TokenLogprob> top;
    sampler.Logprobs(row.data(), token, k, &want, &top);
    float got = 0.0f;
    std::vector<int32_t> ids(k);
    std::vector<float> lps(k);
    ASSERT_TRUE(kernels::cpu::LogprobRow(row.data(), vocab, token, k, &got, ids.data(), lps.data()).ok());
    EXPECT_TRUE(Close(got, want, 1e-5f)) << got << " vs " << want;
    ASSERT_EQ(top.size(), static_cast<size_t>(k));
    for (int32_t j = 0; j < k; ++j) {
      EXPECT_EQ(ids[j], top[j].token);
      EXPECT_TRUE(Close(lps[j], top[j].logprob, 1e-5f));
    }
  }
  // k past the vocabulary: min(k, vocab) entries, the rest -1 / 0.
  const float tiny[3] = {1.0f, -INFINITY, 1.0f};
  float lp = 0.0f;
  int32_t ids[5];
  float lps[5];
  ASSERT_TRUE(kernels::cpu::LogprobRow(tiny, 3, 2, 5, &lp, ids, lps).ok());
  EXPECT_FLOAT_EQ(lp, -std::log(2.0f));
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 2);
  EXPECT_EQ(ids[2], 1);
  EXPECT_EQ(lps[2], -INFINITY);
  EXPECT_EQ(ids[3], -1);
  EXPECT_EQ(lps[4], 0.0f);
}

// The weight's edges (its accuracy against exp is sampler_reference_test's;
// host and device share this one implementation).
TEST(SamplingMath, WeightEdges) {
  EXPECT_EQ(kernels::sampling::SamplingWeight(NAN, 0.0f, 1.0f), 0.0f);
  EXPECT_EQ(kernels::sampling::SamplingWeight(3.0f, 3.0f, 7.0f), 1.0f);
  EXPECT_EQ(kernels::sampling::SamplingWeight(-100.0f, 0.0f, 1.0f), 0.0f);  // below -87
  EXPECT_GT(kernels::sampling::SamplingWeight(-86.0f, 0.0f, 1.0f), 0.0f);
}

TEST(SamplingMath, DeterministicLogIsAccurate) {
  Rng rng(12);
  for (int i = 0; i < 200000; ++i) {
    const double x = std::exp(-700.0 + 1400.0 * rng.Unit()) * (1.0 + rng.Unit());
    EXPECT_NEAR(kernels::sampling::DeterministicLog(x), std::log(x), 4e-16 * std::max(1.0, std::fabs(std::log(x))));
  }
  EXPECT_EQ(kernels::sampling::DeterministicLog(1.0), 0.0);
  EXPECT_EQ(kernels::sampling::DeterministicLog(0.0), -INFINITY);
  EXPECT_NEAR(kernels::sampling::DeterministicLog(4.9406564584124654e-324), std::log(4.9406564584124654e-324), 1e-12);
}

TEST(SamplingMath, RankKeysOrderBestFirst) {
  using kernels::sampling::RankKey;
  EXPECT_LT(RankKey(2.0f), RankKey(1.0f));
  EXPECT_LT(RankKey(1.0f), RankKey(0.0f));
  EXPECT_EQ(RankKey(0.0f), RankKey(-0.0f));
  EXPECT_LT(RankKey(0.0f), RankKey(-1e-30f));
  EXPECT_LT(RankKey(-1.0f), RankKey(-2.0f));
  EXPECT_LT(RankKey(-3e38f), RankKey(-INFINITY));
  EXPECT_LT(RankKey(-INFINITY), kernels::sampling::kNoKey);
  EXPECT_EQ(kernels::sampling::RawRankKey(NAN), RankKey(-INFINITY));
}

}  // namespace
}  // namespace kaon

namespace kaon {
namespace {

// The packer: sections, what a row without penalties sends, and the checks.
TEST(PackSamplingTable, SectionsAndHistoryOnlyForPenalisedRows) {
  const int32_t vocab = 100;
  std::vector<int32_t> prompt = {1, 2, 3}, output = {4, 5};
  std::vector<std::pair<int32_t, float>> bias = {{7, 1.0f}, {100, 2.0f}, {7, 3.0f}, {-1, 1.0f}};
  std::vector<int32_t> banned = {-2, 9, 150};
  std::vector<uint32_t> allowed((vocab + 31) / 32, 0xFFFFFFFFu);
  std::vector<SamplingRow> rows(4);
  for (SamplingRow& r : rows) {
    r.prompt_ids = prompt;
    r.output_ids = output;
  }
  rows[1].repetition_penalty = 1.2f;  // prompt and output
  rows[2].presence_penalty = 0.5f;    // output only
  rows[3].logit_bias = bias;
  rows[3].banned_ids = banned;
  rows[3].allowed = allowed.data();
  rows[3].logprobs = 300;  // more than the vocabulary: capped
  PackedSamplingTable p;
  ASSERT_TRUE(PackSamplingTable(rows, vocab, &p).ok());
  EXPECT_EQ(p.num_rows, 4);
  EXPECT_EQ(p.max_top_logprobs, vocab);
  for (size_t off : {p.rows, p.bias_ids, p.bias_values, p.banned, p.history, p.allowed, p.bytes.size()}) {
    EXPECT_EQ(off % 16, 0u);
  }
  // Rebased onto a copy elsewhere, as the device copy is.
  std::vector<std::byte> copy(p.bytes.size() + 16);
  std::byte* base = copy.data() + (16 - reinterpret_cast<uintptr_t>(copy.data()) % 16) % 16;
  std::memcpy(base, p.bytes.data(), p.bytes.size());
  const kernels::SamplingTable t = ViewSamplingTable(p, base);
  EXPECT_EQ(t.rows[0].prompt_count + t.rows[0].output_count, 0);
  EXPECT_EQ(t.rows[1].prompt_count, 3);
  EXPECT_EQ(t.rows[1].output_count, 2);
  EXPECT_EQ(t.history[t.rows[1].output_begin + 1], 5);
  EXPECT_EQ(t.rows[2].prompt_count, 0);
  EXPECT_EQ(t.rows[2].output_count, 2);
  EXPECT_EQ(t.history[t.rows[2].output_begin], 4);
  EXPECT_EQ(t.rows[3].bias_count, 2);  // out-of-range ids dropped, duplicates kept in order
  EXPECT_EQ(t.bias_ids[t.rows[3].bias_begin + 1], 7);
  EXPECT_EQ(t.bias_values[t.rows[3].bias_begin + 1], 3.0f);
  EXPECT_EQ(t.rows[3].banned_count, 1);
  EXPECT_EQ(t.banned[t.rows[3].banned_begin], 9);
  EXPECT_EQ(t.rows[0].allowed_begin, -1);
  EXPECT_EQ(t.rows[3].allowed_begin, 0);
  EXPECT_EQ(t.allowed[3], 0xFFFFFFFFu);

  // A step without penalties sends no history; the buffer's capacity is reused.
  const size_t capacity = p.bytes.capacity();
  rows.resize(1);
  ASSERT_TRUE(PackSamplingTable(rows, vocab, &p).ok());
  EXPECT_EQ(p.history, p.allowed);
  EXPECT_EQ(p.bytes.capacity(), capacity);
}

TEST(PackSamplingTable, RejectsBadInput) {
  std::vector<int32_t> output = {3, 100};
  std::vector<SamplingRow> rows(1);
  rows[0].output_ids = output;
  PackedSamplingTable p;
  EXPECT_TRUE(PackSamplingTable(rows, 100, &p).ok());  // no penalty: the ids are not read
  rows[0].frequency_penalty = 0.1f;
  EXPECT_FALSE(PackSamplingTable(rows, 100, &p).ok());
  rows[0].frequency_penalty = 0.0f;
  rows[0].logprobs = -2;
  EXPECT_FALSE(PackSamplingTable(rows, 100, &p).ok());
  rows[0].logprobs = -1;
  EXPECT_FALSE(PackSamplingTable(rows, 0, &p).ok());
  EXPECT_FALSE(PackSamplingTable(rows, int64_t{1} << 20, &p).ok());
}

TEST(SampleRowsTwin, RejectsBadArguments) {
  std::vector<SamplingRow> rows(2);
  rows[1].logprobs = 3;
  PackedSamplingTable p;
  ASSERT_TRUE(PackSamplingTable(rows, 8, &p).ok());
  const kernels::SamplingTable t = ViewSamplingTable(p, p.bytes.data());
  std::vector<float> logits(16, 0.0f), work(16);
  int32_t tokens[2], ids[6];
  float lps[2], top[6];
  kernels::SampleOutputs out{tokens, lps, ids, top, 3};
  EXPECT_TRUE(kernels::cpu::SampleRows(logits.data(), 2, 8, 8, t, work.data(), out).ok());
  EXPECT_FALSE(kernels::cpu::SampleRows(logits.data(), 2, 8, 9, t, work.data(), out).ok());
  EXPECT_FALSE(kernels::cpu::SampleRows(logits.data(), 2, 8, 0, t, work.data(), out).ok());
  EXPECT_FALSE(kernels::cpu::SampleRows(logits.data(), 1, 8, 8, t, work.data(), out).ok());
  EXPECT_FALSE(kernels::cpu::SampleRows(nullptr, 2, 8, 8, t, work.data(), out).ok());
  out.top_stride = 2;  // row 1 wants 3
  EXPECT_FALSE(kernels::cpu::SampleRows(logits.data(), 2, 8, 8, t, work.data(), out).ok());
  float lp;
  EXPECT_FALSE(kernels::cpu::LogprobRow(logits.data(), 8, 8, 0, &lp, nullptr, nullptr).ok());
  EXPECT_FALSE(kernels::cpu::LogprobRow(logits.data(), 8, 0, -1, &lp, nullptr, nullptr).ok());
  EXPECT_FALSE(kernels::cpu::LogprobRow(logits.data(), 8, 0, 2, &lp, nullptr, nullptr).ok());
  EXPECT_TRUE(kernels::cpu::LogprobRow(logits.data(), 8, 0, 0, &lp, nullptr, nullptr).ok());
}

}  // namespace
}  // namespace kaon
