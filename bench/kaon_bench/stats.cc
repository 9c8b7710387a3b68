#include "bench/kaon_bench/stats.h"

#include <algorithm>
#include <cmath>

namespace kaon::bench {

double Mean(const std::vector<double>& x) {
  if (x.empty()) return 0;
  double s = 0;
  for (double v : x) s += v;
  return s / static_cast<double>(x.size());
}

double Median(const std::vector<double>& x) { return Percentile(x, 50); }

double StdDev(const std::vector<double>& x) {
  if (x.empty()) return 0;
  const double m = Mean(x);
  double s = 0;
  for (double v : x) s += (v - m) * (v - m);
  return std::sqrt(s / static_cast<double>(x.size()));
}

double Percentile(std::vector<double> x, double p) {
  if (x.empty()) return 0;
  std::sort(x.begin(), x.end());
  const double pos = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(x.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, x.size() - 1);
  return x[lo] + (x[hi] - x[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace kaon::bench
