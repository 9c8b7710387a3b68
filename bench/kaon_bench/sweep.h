// The SLO search: run at each --sweep-rates rate and keep the highest rate at
// which at least 95% of all requests (failures count as misses) meet
// --slo ttft:MS,tpot:MS.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bench/kaon_bench/cost.h"
#include "bench/kaon_bench/metrics.h"

namespace kaon::bench {

inline constexpr double kSloAttainmentTarget = 0.95;

struct SweepPoint {
  double request_rate = 0;
  double slo_attainment = 0;  // fraction of all requests meeting the SLO
  Metrics metrics;
  CostReport cost;
};

// The automatic search (--sweep-rates auto): doubles the rate from `start`
// while the SLO holds and the server keeps up (completed requests/s at least
// 80% of the offered rate), then bisects between the last rate that met the
// SLO and the first that did not, until they are within 10%. At most
// `max_points` runs.
class RateSearch {
 public:
  explicit RateSearch(double start = 1.0, int max_points = 12) : start_(start), max_points_(max_points) {}
  // The next rate to run given the points run so far (in order); nullopt when done.
  std::optional<double> Next(const std::vector<SweepPoint>& done) const;

 private:
  double start_;
  int max_points_;
};

// Fraction of outputs that succeeded and meet every threshold set.
double SloAttainment(const std::vector<RequestOutput>& outputs, const SloThresholds& slo);

// Index of the highest-rate point with attainment >= target, if any.
std::optional<size_t> BestSweepPoint(const std::vector<SweepPoint>& points, double target = kSloAttainmentTarget);

// "ttft:300,tpot:50" or {"ttft:300", "tpot:50"} (also e2el:MS). Throws std::runtime_error.
SloThresholds ParseSlo(const std::vector<std::string>& items);
// "1,2,4.5" -> rates; "inf" allowed. Throws std::runtime_error.
std::vector<double> ParseRates(const std::string& csv, const std::string& flag = "--sweep-rates");

// "a,,b" → {"a", "b"}: the comma lists of the flags (rates, SLOs, metric names).
std::vector<std::string> SplitComma(const std::string& s);

}  // namespace kaon::bench
