// Metric arithmetic on hand-made timelines whose answers are worked out in
// the comments.
#include <cmath>

#include "bench/kaon_bench/metrics.h"
#include "bench/kaon_bench/stats.h"
#include "gtest/gtest.h"

namespace kaon::bench {
namespace {

RequestOutput Ok(double start, double ttft, std::vector<double> itl, int64_t prompt, int64_t out) {
  RequestOutput r;
  r.success = true;
  r.start_s = start;
  r.ttft_s = ttft;
  r.itl_s = std::move(itl);
  double lat = ttft;
  for (double g : r.itl_s) lat += g;
  r.latency_s = lat;
  r.prompt_tokens = prompt;
  r.output_tokens = out;
  r.content_chunks = static_cast<int64_t>(r.itl_s.size()) + 1;
  return r;
}

// A: sent at 0, first token at 0.1, then 3 tokens 20 ms apart (E2EL 0.16)
// B: sent at 0.05, first token at 0.3 after send, one more 50 ms later (E2EL 0.35)
// C: sent at 0.5, failed after 0.2 s
std::vector<RequestOutput> Timeline() {
  RequestOutput c;
  c.start_s = 0.5;
  c.latency_s = 0.2;
  c.error = "HTTP 500: boom";
  return {Ok(0, 0.1, {0.02, 0.02, 0.02}, 10, 4), Ok(0.05, 0.3, {0.05}, 20, 2), c};
}

TEST(KaonBenchStats, MatchNumpy) {
  const std::vector<double> x = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(Mean(x), 2.5);
  EXPECT_DOUBLE_EQ(Median(x), 2.5);
  EXPECT_DOUBLE_EQ(StdDev(x), std::sqrt(1.25));  // np.std, ddof=0
  EXPECT_DOUBLE_EQ(Percentile(x, 90), 3.7);       // np.percentile linear
  EXPECT_DOUBLE_EQ(Percentile(x, 99), 3.97);
  EXPECT_DOUBLE_EQ(Percentile(x, 0), 1);
  EXPECT_DOUBLE_EQ(Percentile(x, 100), 4);
  EXPECT_DOUBLE_EQ(Mean({}), 0);
  EXPECT_DOUBLE_EQ(Percentile({}, 99), 0);
  EXPECT_DOUBLE_EQ(Percentile({7}, 99), 7);
}

TEST(KaonBenchMetrics, TpotUsesUsageTokens) {
  RequestOutput r = Ok(0, 0.1, {0.02, 0.02, 0.02}, 10, 4);
  EXPECT_NEAR(RequestTpot(r), 0.02, 1e-12);  // (0.16 - 0.1) / (4 - 1)
  r.output_tokens = 7;                         // usage says more tokens than chunks
  EXPECT_NEAR(RequestTpot(r), 0.01, 1e-12);  // (0.16 - 0.1) / 6
  r.output_tokens = 1;
  EXPECT_EQ(RequestTpot(r), 0);               // undefined: vLLM uses 0
}

TEST(KaonBenchMetrics, KnownTimeline) {
  SloThresholds goodput;
  goodput.ttft_ms = 200;
  const Metrics m = ComputeMetrics(Timeline(), 1.0, {50, 90, 99}, goodput);
  EXPECT_EQ(m.completed, 2);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.errors.at("HTTP 500: boom"), 1);
  EXPECT_EQ(m.total_input_tokens, 30);
  EXPECT_EQ(m.total_output_tokens, 6);
  EXPECT_DOUBLE_EQ(m.request_throughput, 2.0);
  EXPECT_DOUBLE_EQ(m.output_throughput, 6.0);
  EXPECT_DOUBLE_EQ(m.total_token_throughput, 36.0);
  // TTFT [100, 300] ms
  EXPECT_NEAR(m.ttft.mean_ms, 200, 1e-9);
  EXPECT_NEAR(m.ttft.median_ms, 200, 1e-9);
  EXPECT_NEAR(m.ttft.std_ms, 100, 1e-9);
  ASSERT_EQ(m.ttft.percentiles_ms.size(), 3u);
  EXPECT_EQ(m.ttft.percentiles_ms[1].first, 90);
  EXPECT_NEAR(m.ttft.percentiles_ms[1].second, 280, 1e-9);
  EXPECT_NEAR(m.ttft.percentiles_ms[2].second, 298, 1e-9);
  // TPOT [20, 50] ms
  EXPECT_NEAR(m.tpot.mean_ms, 35, 1e-9);
  EXPECT_EQ(m.tpot.count, 2u);
  // ITL [20, 20, 20, 50] ms
  EXPECT_NEAR(m.itl.mean_ms, 27.5, 1e-9);
  EXPECT_NEAR(m.itl.median_ms, 20, 1e-9);
  EXPECT_EQ(m.itl.count, 4u);
  // E2EL [160, 350] ms
  EXPECT_NEAR(m.e2el.mean_ms, 255, 1e-9);
  // Goodput: only A has TTFT <= 200 ms.
  EXPECT_EQ(m.good_completed, 1);
  EXPECT_DOUBLE_EQ(m.request_goodput, 1.0);
  // In flight: 0.16 + 0.35 + 0.2 request-seconds over 1 s; A and B overlap.
  EXPECT_NEAR(m.mean_concurrency, 0.71, 1e-12);
  EXPECT_EQ(m.max_concurrent_requests, 2);
  // All six content chunks land in the first second.
  EXPECT_DOUBLE_EQ(m.peak_output_tokens_per_s, 6);
}

TEST(KaonBenchMetrics, GoodputChecksEverySloAndTpotZeroForOneToken) {
  SloThresholds slo;
  slo.tpot_ms = 30;
  slo.e2el_ms = 400;
  auto t = Timeline();
  EXPECT_TRUE(MeetsSlo(t[0], slo));   // TPOT 20
  EXPECT_FALSE(MeetsSlo(t[1], slo));  // TPOT 50
  EXPECT_FALSE(MeetsSlo(t[2], slo));  // failed
  slo.e2el_ms = 150;
  EXPECT_FALSE(MeetsSlo(t[0], slo));  // E2EL 160
  RequestOutput one = Ok(0, 0.5, {}, 1, 1);
  SloThresholds tpot_only;
  tpot_only.tpot_ms = 1;
  EXPECT_TRUE(MeetsSlo(one, tpot_only));  // TPOT counts as 0, as in vLLM
}

TEST(KaonBenchMetrics, PeakAndConcurrencyAcrossSeconds) {
  // Two back-to-back requests never overlap; tokens spread over 3 seconds.
  std::vector<RequestOutput> v = {Ok(0, 0.5, {0.2, 0.2, 0.2, 0.2}, 1, 5), Ok(1.35, 0.1, {1.0}, 1, 2)};
  // first: tokens at 0.5 0.7 0.9 1.1 1.3; second: 1.45, 2.45
  EXPECT_EQ(PeakOutputTokensPerSecond(v), 3);  // bucket 0: 3, bucket 1: 3, bucket 2: 1
  EXPECT_EQ(MaxConcurrency(v), 1);             // ends at 1.3 before the second starts at 1.35
  EXPECT_NEAR(MeanConcurrency(v, 2.45), (1.3 + 1.1) / 2.45, 1e-9);
}

TEST(KaonBenchMetrics, EmptyRunIsAllZero) {
  const Metrics m = ComputeMetrics({}, 0, {99}, {});
  EXPECT_EQ(m.completed, 0);
  EXPECT_EQ(m.request_throughput, 0);
  EXPECT_EQ(m.ttft.mean_ms, 0);
}

}  // namespace
}  // namespace kaon::bench
