#include "bench/kaon_bench/cost.h"

namespace kaon::bench {

CostReport ComputeCost(const CostInputs& in, double duration_s, int64_t input_tokens, int64_t output_tokens) {
  CostReport c;
  c.usd_per_hour = in.gpu_cost_per_hour * in.num_gpus;
  const double usd_per_s = c.usd_per_hour / 3600.0;
  if (duration_s > 0) {
    const double out_tps = static_cast<double>(output_tokens) / duration_s;
    const double total_tps = static_cast<double>(input_tokens + output_tokens) / duration_s;
    if (out_tps > 0) c.usd_per_1m_output_tokens = usd_per_s / out_tps * 1e6;
    if (total_tps > 0) c.usd_per_1m_total_tokens = usd_per_s / total_tps * 1e6;
  }
  c.run_cost_usd = usd_per_s * duration_s;
  c.api_cost_usd = (static_cast<double>(input_tokens) * in.api_price_input +
                    static_cast<double>(output_tokens) * in.api_price_output) / 1e6;
  if (c.api_cost_usd > 0) c.ratio_to_api = c.run_cost_usd / c.api_cost_usd;
  return c;
}

}  // namespace kaon::bench
