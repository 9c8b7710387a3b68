// Arrival schedules: inf sends everything at once; finite rates have the
// requested mean gap and the gamma shape's variance (CV^2 = 1 / burstiness).
#include <cmath>
#include <limits>

#include "bench/kaon_bench/arrivals.h"
#include "gtest/gtest.h"

namespace kaon::bench {
namespace {

struct GapStats {
  double mean, cv2;
};

GapStats Gaps(const std::vector<double>& t) {
  std::vector<double> g;
  for (size_t i = 1; i < t.size(); ++i) g.push_back(t[i] - t[i - 1]);
  double m = 0;
  for (double x : g) m += x;
  m /= static_cast<double>(g.size());
  double v = 0;
  for (double x : g) v += (x - m) * (x - m);
  v /= static_cast<double>(g.size());
  return {m, v / (m * m)};
}

TEST(KaonBenchArrivals, InfiniteRateSendsAllAtZero) {
  const auto t = ArrivalOffsets(5, std::numeric_limits<double>::infinity(), 1.0, 0);
  ASSERT_EQ(t.size(), 5u);
  for (double x : t) EXPECT_EQ(x, 0);
}

TEST(KaonBenchArrivals, PoissonHasMeanRateAndUnitCv) {
  const auto t = ArrivalOffsets(40001, 10.0, 1.0, 42);
  EXPECT_EQ(t[0], 0);
  for (size_t i = 1; i < t.size(); ++i) ASSERT_GE(t[i], t[i - 1]);
  const GapStats s = Gaps(t);
  EXPECT_NEAR(s.mean, 0.1, 0.1 * 0.03);
  EXPECT_NEAR(s.cv2, 1.0, 0.1);
}

TEST(KaonBenchArrivals, BurstinessKeepsTheMeanAndChangesTheSpread) {
  const GapStats bursty = Gaps(ArrivalOffsets(40001, 4.0, 0.5, 7));
  EXPECT_NEAR(bursty.mean, 0.25, 0.25 * 0.04);
  EXPECT_NEAR(bursty.cv2, 2.0, 0.25);
  const GapStats smooth = Gaps(ArrivalOffsets(40001, 4.0, 4.0, 7));
  EXPECT_NEAR(smooth.mean, 0.25, 0.25 * 0.03);
  EXPECT_NEAR(smooth.cv2, 0.25, 0.03);
}

TEST(KaonBenchArrivals, SeedReproduces) {
  EXPECT_EQ(ArrivalOffsets(100, 3.0, 1.0, 5), ArrivalOffsets(100, 3.0, 1.0, 5));
  EXPECT_NE(ArrivalOffsets(100, 3.0, 1.0, 5), ArrivalOffsets(100, 3.0, 1.0, 6));
}

}  // namespace
}  // namespace kaon::bench
