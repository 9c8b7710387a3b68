#include "bench/kaon_bench/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <sstream>

namespace kaon::bench {
namespace {

struct Series {
  std::string name, color;
  std::vector<double> y;
};

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

double Percentile99(const Distribution& d) {
  for (const auto& [p, v] : d.percentiles_ms)
    if (p == 99) return v;
  return d.percentiles_ms.empty() ? d.mean_ms : d.percentiles_ms.back().second;
}

// One panel at (x0, y0) of size w x h.
void Panel(std::ostringstream& svg, double x0, double y0, double w, double h, const std::string& ylabel,
           const std::vector<double>& x, const std::vector<std::string>& labels, const std::vector<Series>& series,
           std::optional<double> slo) {
  double xmax = 0, ymax = 0;
  for (double v : x) xmax = std::max(xmax, v);
  for (const Series& s : series)
    for (double v : s.y) ymax = std::max(ymax, v);
  if (slo) ymax = std::max(ymax, *slo);
  xmax = xmax > 0 ? xmax * 1.1 : 1;
  ymax = ymax > 0 ? ymax * 1.1 : 1;
  auto px = [&](double v) { return x0 + v / xmax * w; };
  auto py = [&](double v) { return y0 + h - v / ymax * h; };
  svg << "<rect x='" << x0 << "' y='" << y0 << "' width='" << w << "' height='" << h
      << "' fill='none' stroke='#888'/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double xv = xmax * i / 4, yv = ymax * i / 4;
    svg << "<text x='" << px(xv) << "' y='" << y0 + h + 16 << "' font-size='11' text-anchor='middle'>" << Num(xv)
        << "</text>\n";
    svg << "<text x='" << x0 - 6 << "' y='" << py(yv) + 4 << "' font-size='11' text-anchor='end'>" << Num(yv)
        << "</text>\n";
    svg << "<line x1='" << x0 << "' x2='" << x0 + w << "' y1='" << py(yv) << "' y2='" << py(yv)
        << "' stroke='#eee'/>\n";
  }
  svg << "<text x='" << x0 + w / 2 << "' y='" << y0 + h + 34
      << "' font-size='12' text-anchor='middle'>output token throughput (tok/s)</text>\n";
  svg << "<text x='" << x0 - 48 << "' y='" << y0 + h / 2 << "' font-size='12' text-anchor='middle' transform='rotate(-90 "
      << x0 - 48 << " " << y0 + h / 2 << ")'>" << Escape(ylabel) << "</text>\n";
  if (slo) {
    svg << "<line x1='" << x0 << "' x2='" << x0 + w << "' y1='" << py(*slo) << "' y2='" << py(*slo)
        << "' stroke='#d62728' stroke-dasharray='6 4'/>\n";
    svg << "<text x='" << x0 + w - 4 << "' y='" << py(*slo) - 4
        << "' font-size='11' text-anchor='end' fill='#d62728'>SLO " << Num(*slo) << " ms</text>\n";
  }
  int legend = 0;
  for (const Series& s : series) {
    svg << "<polyline fill='none' stroke='" << s.color << "' stroke-width='2' points='";
    for (size_t i = 0; i < x.size(); ++i) svg << px(x[i]) << "," << py(s.y[i]) << " ";
    svg << "'/>\n";
    for (size_t i = 0; i < x.size(); ++i)
      svg << "<circle cx='" << px(x[i]) << "' cy='" << py(s.y[i]) << "' r='3' fill='" << s.color << "'/>\n";
    svg << "<text x='" << x0 + 8 << "' y='" << y0 + 16 + 14 * legend++ << "' font-size='11' fill='" << s.color << "'>"
        << Escape(s.name) << "</text>\n";
  }
  if (!series.empty()) {
    for (size_t i = 0; i < x.size(); ++i)
      svg << "<text x='" << px(x[i]) + 4 << "' y='" << py(series.back().y[i]) - 6 << "' font-size='10' fill='#555'>"
          << Escape(labels[i]) << "</text>\n";
  }
}

}  // namespace

std::string SweepSvg(const std::vector<SweepPoint>& points, const SloThresholds& slo, const std::string& title) {
  std::vector<SweepPoint> sorted = points;
  std::sort(sorted.begin(), sorted.end(),
            [](const SweepPoint& a, const SweepPoint& b) { return a.metrics.output_throughput < b.metrics.output_throughput; });
  std::vector<double> x;
  std::vector<std::string> labels;
  Series ttft50{"median TTFT", "#1f77b4", {}}, ttft99{"p99 TTFT", "#ff7f0e", {}};
  Series tpot50{"median TPOT", "#1f77b4", {}}, tpot99{"p99 TPOT", "#ff7f0e", {}};
  for (const SweepPoint& p : sorted) {
    x.push_back(p.metrics.output_throughput);
    labels.push_back(std::isinf(p.request_rate) ? "inf req/s" : Num(p.request_rate) + " req/s");
    ttft50.y.push_back(p.metrics.ttft.median_ms);
    ttft99.y.push_back(Percentile99(p.metrics.ttft));
    tpot50.y.push_back(p.metrics.tpot.median_ms);
    tpot99.y.push_back(Percentile99(p.metrics.tpot));
  }
  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='900' height='420' font-family='sans-serif'>\n";
  svg << "<rect width='100%' height='100%' fill='white'/>\n";
  svg << "<text x='450' y='24' font-size='15' text-anchor='middle'>" << Escape(title) << "</text>\n";
  Panel(svg, 80, 50, 330, 300, "TTFT (ms)", x, labels, {ttft50, ttft99}, slo.ttft_ms);
  Panel(svg, 540, 50, 330, 300, "TPOT (ms)", x, labels, {tpot50, tpot99}, slo.tpot_ms);
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace kaon::bench
