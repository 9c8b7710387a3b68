#include "server/metrics/histogram.h"

#include <string>

#include "gtest/gtest.h"

namespace kaon::metrics {
namespace {

TEST(HistogramTest, BucketsAreLessOrEqualAndCumulative) {
  Histogram h({0.1, 1.0, 10.0});
  for (double v : {0.05, 0.1, 0.5, 1.0, 3.0, 100.0}) h.Observe(v);
  const Histogram::Snapshot s = h.snapshot();
  ASSERT_EQ(s.counts.size(), 4u);
  // 0.05 and 0.1 (le), then 0.5 and 1.0, then 3.0, then 100 above every bound.
  EXPECT_EQ(s.counts[0], 2u);
  EXPECT_EQ(s.counts[1], 2u);
  EXPECT_EQ(s.counts[2], 1u);
  EXPECT_EQ(s.counts[3], 1u);
  EXPECT_EQ(s.count, 6u);
  EXPECT_DOUBLE_EQ(s.sum, 104.65);

  std::string text;
  h.Render("x_seconds", "model_name=\"m\"", &text);
  EXPECT_NE(text.find("x_seconds_bucket{model_name=\"m\",le=\"0.1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_bucket{model_name=\"m\",le=\"1\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_bucket{model_name=\"m\",le=\"10\"} 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 6\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_sum{model_name=\"m\"} 104.65\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_count{model_name=\"m\"} 6\n"), std::string::npos) << text;
}

TEST(HistogramTest, RendersWithoutLabels) {
  Histogram h({1.0});
  h.Observe(2);
  std::string text;
  h.Render("y", "", &text);
  EXPECT_EQ(text, "y_bucket{le=\"1\"} 0\ny_bucket{le=\"+Inf\"} 1\ny_sum 2\ny_count 1\n");
}

TEST(HistogramTest, OneTwoFiveBucketsReachTheMaximum) {
  EXPECT_EQ(OneTwoFiveBuckets(512), (std::vector<double>{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}));
  EXPECT_EQ(OneTwoFiveBuckets(500), (std::vector<double>{1, 2, 5, 10, 20, 50, 100, 200, 500}));
  EXPECT_EQ(OneTwoFiveBuckets(1), (std::vector<double>{1}));
}

TEST(HistogramTest, FormatsValuesAsPrometheusDoes) {
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-7), "-7");
}

}  // namespace
}  // namespace kaon::metrics
