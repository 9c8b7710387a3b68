#include "bench/kaon_bench/metrics.h"

#include <algorithm>
#include <cmath>

#include "bench/kaon_bench/stats.h"

namespace kaon::bench {
namespace {

Distribution Summarize(const std::vector<double>& seconds, const std::vector<double>& percentiles) {
  std::vector<double> ms;
  ms.reserve(seconds.size());
  for (double s : seconds) ms.push_back(s * 1000.0);
  Distribution d;
  d.count = ms.size();
  d.mean_ms = Mean(ms);
  d.median_ms = Median(ms);
  d.std_ms = StdDev(ms);
  for (double p : percentiles) d.percentiles_ms.emplace_back(p, Percentile(ms, p));
  return d;
}

}  // namespace

double RequestTpot(const RequestOutput& r) {
  if (r.output_tokens <= 1) return 0;
  return (r.latency_s - r.ttft_s) / static_cast<double>(r.output_tokens - 1);
}

bool MeetsSlo(const RequestOutput& r, const SloThresholds& slo) {
  if (!r.success) return false;
  // vLLM compares seconds against ms / 1000 with <=.
  if (slo.ttft_ms && r.ttft_s > *slo.ttft_ms / 1000.0) return false;
  if (slo.tpot_ms && RequestTpot(r) > *slo.tpot_ms / 1000.0) return false;
  if (slo.e2el_ms && r.latency_s > *slo.e2el_ms / 1000.0) return false;
  return true;
}

double MeanConcurrency(const std::vector<RequestOutput>& outputs, double duration_s) {
  if (duration_s <= 0) return 0;
  double area = 0;
  for (const RequestOutput& r : outputs) area += r.latency_s;
  return area / duration_s;
}

int64_t MaxConcurrency(const std::vector<RequestOutput>& outputs) {
  // Sweep over start (+1) and end (-1) events; ends sort before starts at the
  // same instant so back-to-back requests do not count as overlapping.
  std::vector<std::pair<double, int>> ev;
  for (const RequestOutput& r : outputs) {
    ev.emplace_back(r.start_s, +1);
    ev.emplace_back(r.start_s + r.latency_s, -1);
  }
  std::sort(ev.begin(), ev.end());
  int64_t cur = 0, best = 0;
  for (const auto& [t, d] : ev) {
    cur += d;
    best = std::max(best, cur);
  }
  return best;
}

double PeakOutputTokensPerSecond(const std::vector<RequestOutput>& outputs) {
  std::map<int64_t, int64_t> buckets;
  for (const RequestOutput& r : outputs) {
    if (!r.success || r.content_chunks == 0) continue;
    double t = r.start_s + r.ttft_s;
    ++buckets[static_cast<int64_t>(std::floor(t))];
    for (double gap : r.itl_s) {
      t += gap;
      ++buckets[static_cast<int64_t>(std::floor(t))];
    }
  }
  int64_t best = 0;
  for (const auto& [b, n] : buckets) best = std::max(best, n);
  return static_cast<double>(best);
}

Metrics ComputeMetrics(const std::vector<RequestOutput>& outputs, double duration_s,
                       const std::vector<double>& percentiles, const SloThresholds& goodput) {
  Metrics m;
  m.duration_s = duration_s;
  m.num_requests = static_cast<int64_t>(outputs.size());
  std::vector<double> ttfts, tpots, itls, e2els;
  for (const RequestOutput& r : outputs) {
    if (!r.success) {
      ++m.failed;
      ++m.errors[r.error.empty() ? "unknown error" : r.error];
      continue;
    }
    ++m.completed;
    m.total_input_tokens += r.prompt_tokens;
    m.total_output_tokens += r.output_tokens;
    if (r.output_tokens > 1) tpots.push_back(RequestTpot(r));
    itls.insert(itls.end(), r.itl_s.begin(), r.itl_s.end());
    ttfts.push_back(r.ttft_s);
    e2els.push_back(r.latency_s);
    if (!goodput.empty() && MeetsSlo(r, goodput)) ++m.good_completed;
  }
  if (duration_s > 0) {
    m.request_throughput = static_cast<double>(m.completed) / duration_s;
    m.request_goodput = static_cast<double>(m.good_completed) / duration_s;
    m.output_throughput = static_cast<double>(m.total_output_tokens) / duration_s;
    m.total_token_throughput = static_cast<double>(m.total_input_tokens + m.total_output_tokens) / duration_s;
  }
  m.peak_output_tokens_per_s = PeakOutputTokensPerSecond(outputs);
  m.max_concurrent_requests = MaxConcurrency(outputs);
  m.mean_concurrency = MeanConcurrency(outputs, duration_s);
  m.ttft = Summarize(ttfts, percentiles);
  m.tpot = Summarize(tpots, percentiles);
  m.itl = Summarize(itls, percentiles);
  m.e2el = Summarize(e2els, percentiles);
  return m;
}

}  // namespace kaon::bench
