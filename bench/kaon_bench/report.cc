#include "bench/kaon_bench/report.h"

#include <cmath>
#include <cstdio>
#include <iomanip>

#include "bench/kaon_bench/stats.h"

namespace kaon::bench {
namespace {

using Json = nlohmann::ordered_json;

void Row(std::ostream& os, const std::string& label, double v, int precision = 2) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%-40s %-10.*f\n", std::string(label).append(":").c_str(), precision, v);
  os << buf;
}

void Row(std::ostream& os, const std::string& label, const std::string& v) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-40s %s\n", std::string(label).append(":").c_str(), v.c_str());
  os << buf;
}

void Header(std::ostream& os, const std::string& title, char fill) {
  const int width = 50;
  const int left = std::max(0, (width - static_cast<int>(title.size())) / 2);
  const int right = std::max(0, width - left - static_cast<int>(title.size()));
  os << std::string(static_cast<size_t>(left), fill) << title << std::string(static_cast<size_t>(right), fill)
     << "\n";
}

std::string PercentileName(double p) {
  char buf[32];
  if (p == std::floor(p)) std::snprintf(buf, sizeof buf, "%d", static_cast<int>(p));
  else std::snprintf(buf, sizeof buf, "%g", p);
  return buf;
}

void DistributionRows(std::ostream& os, const std::string& key, const std::string& title, const Distribution& d) {
  Header(os, title, '-');
  std::string up = key;
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  // Appends rather than "literal" + string: GCC 12 raises a false -Wrestrict on the latter.
  auto label = [&](const std::string& stat) {
    std::string s = stat;
    s.append(" ").append(up).append(" (ms)");
    return s;
  };
  Row(os, label("Mean"), d.mean_ms);
  Row(os, label("Median"), d.median_ms);
  Row(os, label("Std"), d.std_ms);
  for (const auto& [p, v] : d.percentiles_ms) Row(os, label(std::string("P").append(PercentileName(p))), v);
}

void DistributionJson(Json& j, const std::string& key, const Distribution& d) {
  auto name = [&](const std::string& stat) { return std::string(stat).append("_").append(key).append("_ms"); };
  j[name("mean")] = d.mean_ms;
  j[name("median")] = d.median_ms;
  j[name("std")] = d.std_ms;
  for (const auto& [p, v] : d.percentiles_ms) j[name(std::string("p").append(PercentileName(p)))] = v;
}

}  // namespace

std::string FormatRatio(double r) {
  char buf[32];
  if (r >= 10) std::snprintf(buf, sizeof buf, "%.0fx", r);
  else std::snprintf(buf, sizeof buf, "%.2gx", r);
  return buf;
}

void PrintSummary(std::ostream& os, const Metrics& m, const ReportOptions& o) {
  Header(os, " Serving Benchmark Result ", '=');
  Row(os, "Successful requests", std::to_string(m.completed));
  Row(os, "Failed requests", std::to_string(m.failed));
  Row(os, "Benchmark duration (s)", m.duration_s);
  Row(os, "Total input tokens", std::to_string(m.total_input_tokens));
  Row(os, "Total generated tokens", std::to_string(m.total_output_tokens));
  Row(os, "Request throughput (req/s)", m.request_throughput);
  if (!o.goodput.empty()) Row(os, "Request goodput (req/s)", m.request_goodput);
  Row(os, "Output token throughput (tok/s)", m.output_throughput);
  Row(os, "Peak output token throughput (tok/s)", m.peak_output_tokens_per_s);
  Row(os, "Peak concurrent requests", std::to_string(m.max_concurrent_requests));
  Row(os, "Mean concurrency (time-averaged)", m.mean_concurrency);
  Row(os, "Total token throughput (tok/s)", m.total_token_throughput);
  if (o.percentile_metrics.count("ttft")) DistributionRows(os, "ttft", "Time to First Token", m.ttft);
  if (o.percentile_metrics.count("tpot")) DistributionRows(os, "tpot", "Time per Output Token (excl. 1st token)", m.tpot);
  if (o.percentile_metrics.count("itl")) DistributionRows(os, "itl", "Inter-token Latency", m.itl);
  if (o.percentile_metrics.count("e2el")) DistributionRows(os, "e2el", "End-to-end Latency", m.e2el);
  if (o.cost) {
    Header(os, "Cost", '-');
    Row(os, "GPU cost ($/h, all GPUs)", o.cost->usd_per_hour);
    Row(os, "Cost per 1M output tokens ($)", o.cost->usd_per_1m_output_tokens, 4);
    Row(os, "Cost per 1M total tokens ($)", o.cost->usd_per_1m_total_tokens, 4);
    Row(os, "This run at the API price ($)", o.cost->api_cost_usd, 6);
    Row(os, "This run on the GPUs ($)", o.cost->run_cost_usd, 6);
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s the API price ($%.2f in / $%.2f out per 1M)", FormatRatio(o.cost->ratio_to_api).c_str(),
                  o.cost_inputs.api_price_input, o.cost_inputs.api_price_output);
    Row(os, "Relative cost", buf);
  }
  if (!m.errors.empty()) {
    Header(os, "Errors", '-');
    for (const auto& [text, n] : m.errors) os << n << " x " << text << "\n";
  }
  os << std::string(50, '=') << "\n";
}

void PrintSweep(std::ostream& os, const std::vector<SweepPoint>& points, std::optional<size_t> best,
                const SloThresholds& slo, bool with_cost) {
  Header(os, " SLO sweep ", '=');
  char buf[256];
  std::snprintf(buf, sizeof buf, "%10s %10s %10s %12s %12s %12s %10s\n", "rate", "req/s", "out tok/s", "p99 TTFT ms",
                "p99 TPOT ms", "SLO met", "$/1M out");
  os << buf;
  for (const SweepPoint& p : points) {
    const auto p99 = [](const Distribution& d) { return d.percentiles_ms.empty() ? d.mean_ms : d.percentiles_ms.back().second; };
    std::snprintf(buf, sizeof buf, "%10.2f %10.2f %10.1f %12.1f %12.2f %11.1f%% %10.4f\n", p.request_rate,
                  p.metrics.request_throughput, p.metrics.output_throughput, p99(p.metrics.ttft), p99(p.metrics.tpot),
                  p.slo_attainment * 100, with_cost ? p.cost.usd_per_1m_output_tokens : 0.0);
    os << buf;
  }
  if (best) {
    const SweepPoint& b = points[*best];
    std::snprintf(buf, sizeof buf, "Highest rate meeting the SLO for >= %.0f%% of requests: %.2f req/s (%.1f output tok/s)\n",
                  kSloAttainmentTarget * 100, b.request_rate, b.metrics.output_throughput);
    os << buf;
    if (with_cost) {
      std::snprintf(buf, sizeof buf, "Cost there: $%.4f per 1M output tokens, %s the API price\n",
                    b.cost.usd_per_1m_output_tokens, FormatRatio(b.cost.ratio_to_api).c_str());
      os << buf;
    }
  } else {
    os << "No swept rate met the SLO for >= 95% of requests\n";
  }
  (void)slo;
  os << std::string(50, '=') << "\n";
}

Json CostJson(const CostReport& c, const CostInputs& in) {
  Json j;
  j["gpu_cost_per_hour"] = in.gpu_cost_per_hour;
  j["num_gpus"] = in.num_gpus;
  j["api_price_input_per_1m"] = in.api_price_input;
  j["api_price_output_per_1m"] = in.api_price_output;
  j["usd_per_hour"] = c.usd_per_hour;
  j["usd_per_1m_output_tokens"] = c.usd_per_1m_output_tokens;
  j["usd_per_1m_total_tokens"] = c.usd_per_1m_total_tokens;
  j["run_cost_usd"] = c.run_cost_usd;
  j["api_cost_usd"] = c.api_cost_usd;
  j["ratio_to_api_price"] = c.ratio_to_api;
  return j;
}

Json MetricsJson(const Metrics& m, const ReportOptions& o) {
  Json j;
  j["duration"] = m.duration_s;
  j["num_prompts"] = m.num_requests;
  j["completed"] = m.completed;
  j["failed"] = m.failed;
  j["total_input_tokens"] = m.total_input_tokens;
  j["total_output_tokens"] = m.total_output_tokens;
  j["request_throughput"] = m.request_throughput;
  j["request_goodput"] = o.goodput.empty() ? Json(nullptr) : Json(m.request_goodput);
  j["output_throughput"] = m.output_throughput;
  j["total_token_throughput"] = m.total_token_throughput;
  j["max_output_tokens_per_s"] = m.peak_output_tokens_per_s;
  j["max_concurrent_requests"] = m.max_concurrent_requests;
  j["mean_concurrency"] = m.mean_concurrency;
  // All four distributions, whatever --percentile-metrics shows on screen.
  DistributionJson(j, "ttft", m.ttft);
  DistributionJson(j, "tpot", m.tpot);
  DistributionJson(j, "itl", m.itl);
  DistributionJson(j, "e2el", m.e2el);
  Json errors = Json::object();
  for (const auto& [text, n] : m.errors) errors[text] = n;
  j["errors"] = errors;
  if (o.cost) j["cost"] = CostJson(*o.cost, o.cost_inputs);
  return j;
}

void WriteRequestLines(std::ostream& os, const std::vector<RequestOutput>& outputs, double request_rate) {
  for (const RequestOutput& r : outputs) {
    Json j;
    j["index"] = r.index;
    if (std::isfinite(request_rate)) j["request_rate"] = request_rate;
    j["success"] = r.success;
    j["error"] = r.error;
    j["start_s"] = r.start_s;
    j["ttft_ms"] = r.ttft_s * 1000;
    j["e2el_ms"] = r.latency_s * 1000;
    j["prompt_tokens"] = r.prompt_tokens;
    j["output_tokens"] = r.output_tokens;
    j["usage_reported"] = r.usage_reported;
    j["content_chunks"] = r.content_chunks;
    Json itl = Json::array();
    for (double g : r.itl_s) itl.push_back(g * 1000);
    j["itl_ms"] = itl;
    j["generated_text"] = r.generated_text;
    os << j.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
  }
}

}  // namespace kaon::bench
