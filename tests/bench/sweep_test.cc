// The SLO search's bookkeeping and its plot.
#include <cmath>

#include "bench/kaon_bench/svg.h"
#include "bench/kaon_bench/sweep.h"
#include "gtest/gtest.h"

namespace kaon::bench {
namespace {

TEST(KaonBenchSweep, ParsesSloAndRates) {
  SloThresholds s = ParseSlo({"ttft:300,tpot:50"});
  EXPECT_EQ(*s.ttft_ms, 300);
  EXPECT_EQ(*s.tpot_ms, 50);
  EXPECT_FALSE(s.e2el_ms);
  s = ParseSlo({"ttft:300", "e2el:2000"});  // --goodput's space-separated form
  EXPECT_EQ(*s.e2el_ms, 2000);
  EXPECT_THROW(ParseSlo({"ttft=3"}), std::runtime_error);
  EXPECT_THROW(ParseSlo({"latency:3"}), std::runtime_error);
  EXPECT_THROW(ParseSlo({"ttft:abc"}), std::runtime_error);
  auto r = ParseRates("1,2.5,inf");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1], 2.5);
  EXPECT_TRUE(std::isinf(r[2]));
  EXPECT_THROW(ParseRates("1,-2"), std::runtime_error);
}

TEST(KaonBenchSweep, AttainmentCountsFailuresAsMisses) {
  SloThresholds slo;
  slo.ttft_ms = 100;
  std::vector<RequestOutput> v(4);
  for (auto& r : v) {
    r.success = true;
    r.ttft_s = 0.05;
  }
  v[1].ttft_s = 0.2;
  v[2].success = false;
  EXPECT_DOUBLE_EQ(SloAttainment(v, slo), 0.5);
}

TEST(KaonBenchSweep, BestIsTheHighestRateAtOrAboveTarget) {
  std::vector<SweepPoint> p(4);
  p[0].request_rate = 1, p[0].slo_attainment = 1.0;
  p[1].request_rate = 4, p[1].slo_attainment = 0.95;
  p[2].request_rate = 2, p[2].slo_attainment = 0.99;
  p[3].request_rate = 8, p[3].slo_attainment = 0.80;
  EXPECT_EQ(BestSweepPoint(p), 1u);
  p[1].slo_attainment = 0.949;
  EXPECT_EQ(BestSweepPoint(p), 2u);
  for (auto& x : p) x.slo_attainment = 0.5;
  EXPECT_FALSE(BestSweepPoint(p));
}

TEST(KaonBenchSweep, SvgHasBothPanelsAndOnePointPerRate) {
  std::vector<SweepPoint> p(3);
  for (int i = 0; i < 3; ++i) {
    p[i].request_rate = i + 1;
    p[i].metrics.output_throughput = 100.0 * (i + 1);
    p[i].metrics.ttft.median_ms = 50.0 * (i + 1);
    p[i].metrics.ttft.percentiles_ms = {{99, 80.0 * (i + 1)}};
    p[i].metrics.tpot.median_ms = 10;
    p[i].metrics.tpot.percentiles_ms = {{99, 12}};
  }
  SloThresholds slo;
  slo.ttft_ms = 200;
  const std::string svg = SweepSvg(p, slo, "a <title>");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("a &lt;title&gt;"), std::string::npos);
  EXPECT_NE(svg.find("TTFT (ms)"), std::string::npos);
  EXPECT_NE(svg.find("TPOT (ms)"), std::string::npos);
  EXPECT_NE(svg.find("SLO 200 ms"), std::string::npos);
  size_t circles = 0;
  for (size_t pos = 0; (pos = svg.find("<circle", pos)) != std::string::npos; ++pos) ++circles;
  EXPECT_EQ(circles, 12u);  // 3 rates x 4 series
}

}  // namespace
}  // namespace kaon::bench

namespace kaon::bench {
namespace {

// Runs the search against a model server: meets the SLO up to `limit` req/s
// and completes at most `capacity` req/s.
std::vector<SweepPoint> Search(double limit, double capacity) {
  RateSearch search(1.0, 20);
  std::vector<SweepPoint> done;
  while (auto rate = search.Next(done)) {
    SweepPoint p;
    p.request_rate = *rate;
    p.slo_attainment = *rate <= limit ? 1.0 : 0.5;
    p.metrics.request_throughput = std::min(*rate, capacity);
    done.push_back(p);
  }
  return done;
}

TEST(KaonBenchSweep, AutoSearchDoublesThenBisects) {
  const auto done = Search(10, 1e9);
  std::vector<double> rates;
  for (const auto& p : done) rates.push_back(p.request_rate);
  EXPECT_EQ(rates, (std::vector<double>{1, 2, 4, 8, 16, 12, 10, 11}));
  EXPECT_EQ(done[*BestSweepPoint(done)].request_rate, 10);
}

TEST(KaonBenchSweep, AutoSearchStopsWhenTheServerSaturates) {
  const auto done = Search(1e9, 5);
  ASSERT_EQ(done.size(), 4u);  // 1, 2, 4 keep up; 8 completes only 5/s
  EXPECT_EQ(done.back().request_rate, 8);
}

TEST(KaonBenchSweep, AutoSearchGoesDownWhenTheStartMisses) {
  const auto done = Search(0.3, 1e9);
  // 1 misses, 0.5 misses, 0.25 meets, then bisect (0.25, 0.5) to within 10%.
  EXPECT_EQ(done[1].request_rate, 0.5);
  EXPECT_EQ(done[2].request_rate, 0.25);
  const double best = done[*BestSweepPoint(done)].request_rate;
  EXPECT_GE(best, 0.25);
  EXPECT_LE(best, 0.3);
}

}  // namespace
}  // namespace kaon::bench
