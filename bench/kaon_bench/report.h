// What a run prints and writes: the summary table (laid out like
// `vllm bench serve`'s), the --result-json document (vLLM's key names where
// the metric is the same, plus the configuration and cost), and the
// --save-requests JSON lines.
#pragma once

#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "bench/kaon_bench/cost.h"
#include "bench/kaon_bench/metrics.h"
#include "bench/kaon_bench/sweep.h"
#include "nlohmann/json.hpp"

namespace kaon::bench {

struct ReportOptions {
  std::set<std::string> percentile_metrics = {"ttft", "tpot", "itl"};  // --percentile-metrics
  SloThresholds goodput;
  std::optional<CostReport> cost;  // with --gpu-cost-per-hour
  CostInputs cost_inputs;
};

void PrintSummary(std::ostream& os, const Metrics& m, const ReportOptions& o);
void PrintSweep(std::ostream& os, const std::vector<SweepPoint>& points, std::optional<size_t> best,
                const SloThresholds& slo, bool with_cost);

nlohmann::ordered_json MetricsJson(const Metrics& m, const ReportOptions& o);
nlohmann::ordered_json CostJson(const CostReport& c, const CostInputs& in);
// One line per request, in dataset order.
void WriteRequestLines(std::ostream& os, const std::vector<RequestOutput>& outputs, double request_rate);

// "0.08x" with two significant digits.
std::string FormatRatio(double r);

}  // namespace kaon::bench
