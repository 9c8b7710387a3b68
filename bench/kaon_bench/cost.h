// Cost per million tokens at the measured throughput, and the same workload's
// price on a hosted API.
//
// Default API price: OpenAI gpt-4o-mini list price, $0.15 per 1M input and
// $0.60 per 1M output tokens (published July 2024, still the list price in
// 2025). Override with --api-price-input / --api-price-output.
#pragma once

#include <cstdint>

namespace kaon::bench {

inline constexpr double kDefaultApiPriceInput = 0.15;
inline constexpr double kDefaultApiPriceOutput = 0.60;
inline constexpr const char* kDefaultApiPriceSource = "OpenAI gpt-4o-mini list price as of 2024-07-18";

struct CostInputs {
  double gpu_cost_per_hour = 0;  // per GPU, USD
  int num_gpus = 1;
  double api_price_input = kDefaultApiPriceInput;    // USD per 1M input tokens
  double api_price_output = kDefaultApiPriceOutput;  // USD per 1M output tokens
};

struct CostReport {
  double usd_per_hour = 0;            // all GPUs
  double usd_per_1m_output_tokens = 0;
  double usd_per_1m_total_tokens = 0;
  double run_cost_usd = 0;            // GPU time for the benchmark's duration
  double api_cost_usd = 0;            // the same tokens at the API price
  double ratio_to_api = 0;            // run_cost / api_cost ("0.08x the API price")
};

// Throughputs in tokens/s; 0 throughput gives 0 cost per token (nothing measured).
CostReport ComputeCost(const CostInputs& in, double duration_s, int64_t input_tokens, int64_t output_tokens);

}  // namespace kaon::bench
