#include "bench/kaon_bench/sweep.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace kaon::bench {
namespace {

double ParseNumber(const std::string& s, const std::string& what) {
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used != s.size()) throw std::invalid_argument(s);
    return v;
  } catch (const std::exception&) {
    throw std::runtime_error("invalid number '" + s + "' in " + what);
  }
}

}  // namespace

double SloAttainment(const std::vector<RequestOutput>& outputs, const SloThresholds& slo) {
  if (outputs.empty()) return 0;
  size_t good = 0;
  for (const RequestOutput& r : outputs) good += MeetsSlo(r, slo) ? 1 : 0;
  return static_cast<double>(good) / static_cast<double>(outputs.size());
}

std::optional<double> RateSearch::Next(const std::vector<SweepPoint>& done) const {
  if (done.empty()) return start_;
  if (static_cast<int>(done.size()) >= max_points_) return std::nullopt;
  double lo = 0;                                     // highest rate that met the SLO
  double hi = std::numeric_limits<double>::infinity();  // lowest rate that did not
  for (const SweepPoint& p : done) {
    if (p.slo_attainment + 1e-12 >= kSloAttainmentTarget) lo = std::max(lo, p.request_rate);
    else hi = std::min(hi, p.request_rate);
  }
  if (std::isinf(hi)) {
    const SweepPoint& last = done.back();
    // Saturated: offering more only queues more; the top is found.
    if (last.metrics.request_throughput < 0.8 * last.request_rate) return std::nullopt;
    return last.request_rate * 2;
  }
  if (lo == 0) {
    // Even the first rate missed: go down until one meets the SLO.
    if (hi <= start_ / 64) return std::nullopt;
    return hi / 2;
  }
  if (hi / lo <= 1.1) return std::nullopt;
  return (lo + hi) / 2;
}

std::optional<size_t> BestSweepPoint(const std::vector<SweepPoint>& points, double target) {
  std::optional<size_t> best;
  for (size_t i = 0; i < points.size(); ++i) {
    if (points[i].slo_attainment + 1e-12 < target) continue;
    if (!best || points[i].request_rate > points[*best].request_rate) best = i;
  }
  return best;
}

SloThresholds ParseSlo(const std::vector<std::string>& items) {
  SloThresholds slo;
  for (const std::string& group : items) {
    for (const std::string& kv : SplitComma(group)) {
      const size_t colon = kv.find(':');
      if (colon == std::string::npos) throw std::runtime_error("expected NAME:MS, got '" + kv + "'");
      const std::string name = kv.substr(0, colon);
      const double ms = ParseNumber(kv.substr(colon + 1), kv);
      if (ms < 0) throw std::runtime_error("SLO must be non-negative: " + kv);
      if (name == "ttft") slo.ttft_ms = ms;
      else if (name == "tpot") slo.tpot_ms = ms;
      else if (name == "e2el") slo.e2el_ms = ms;
      else throw std::runtime_error("unknown SLO metric '" + name + "' (ttft, tpot, e2el)");
    }
  }
  return slo;
}

std::vector<double> ParseRates(const std::string& csv, const std::string& flag) {
  std::vector<double> rates;
  for (const std::string& r : SplitComma(csv)) {
    if (r == "inf") {
      rates.push_back(std::numeric_limits<double>::infinity());
      continue;
    }
    const double v = ParseNumber(r, flag);
    if (v <= 0) throw std::runtime_error(flag + " must be positive");
    rates.push_back(v);
  }
  if (rates.empty()) throw std::runtime_error(flag + " is empty");
  return rates;
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace kaon::bench
