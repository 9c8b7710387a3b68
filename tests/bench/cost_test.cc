// Cost per million tokens and the ratio to an API price, by hand.
#include "bench/kaon_bench/cost.h"
#include "bench/kaon_bench/report.h"
#include "gtest/gtest.h"

namespace kaon::bench {
namespace {

TEST(KaonBenchCost, PerMillionTokensAtMeasuredThroughput) {
  CostInputs in;
  in.gpu_cost_per_hour = 2.0;
  in.num_gpus = 4;  // $8/h
  // One hour moving 2M input and 4M output tokens.
  const CostReport c = ComputeCost(in, 3600, 2'000'000, 4'000'000);
  EXPECT_DOUBLE_EQ(c.usd_per_hour, 8.0);
  EXPECT_NEAR(c.usd_per_1m_output_tokens, 2.0, 1e-12);  // $8 / 4M output
  EXPECT_NEAR(c.usd_per_1m_total_tokens, 8.0 / 6.0, 1e-12);
  EXPECT_NEAR(c.run_cost_usd, 8.0, 1e-12);
  // Default API price: 2M x $0.15 + 4M x $0.60 = $2.70
  EXPECT_NEAR(c.api_cost_usd, 2.7, 1e-12);
  EXPECT_NEAR(c.ratio_to_api, 8.0 / 2.7, 1e-12);
}

TEST(KaonBenchCost, CustomApiPriceAndShortRun) {
  CostInputs in;
  in.gpu_cost_per_hour = 3.6;  // $0.001 per second
  in.api_price_input = 1.0;
  in.api_price_output = 4.0;
  const CostReport c = ComputeCost(in, 10, 1000, 5000);  // 500 output tok/s
  EXPECT_NEAR(c.run_cost_usd, 0.01, 1e-12);
  EXPECT_NEAR(c.usd_per_1m_output_tokens, 0.001 / 500 * 1e6, 1e-9);  // $2
  EXPECT_NEAR(c.api_cost_usd, (1000 * 1.0 + 5000 * 4.0) / 1e6, 1e-15);
  EXPECT_NEAR(c.ratio_to_api, 0.01 / 0.021, 1e-12);
}

TEST(KaonBenchCost, NothingMeasuredCostsNothingPerToken) {
  CostInputs in;
  in.gpu_cost_per_hour = 1;
  const CostReport c = ComputeCost(in, 5, 0, 0);
  EXPECT_EQ(c.usd_per_1m_output_tokens, 0);
  EXPECT_EQ(c.ratio_to_api, 0);
}

TEST(KaonBenchCost, RatioFormatting) {
  EXPECT_EQ(FormatRatio(0.08), "0.08x");
  EXPECT_EQ(FormatRatio(0.0834), "0.083x");
  EXPECT_EQ(FormatRatio(1.5), "1.5x");
  EXPECT_EQ(FormatRatio(12.3), "12x");
}

}  // namespace
}  // namespace kaon::bench
