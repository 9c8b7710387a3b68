#include "server/metrics/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/strings/str_cat.h"

namespace kaon::metrics {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  // Prometheus buckets are "le": a value equal to a bound falls in it.
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  std::lock_guard<std::mutex> lock(mu_);
  ++counts_[i];
  sum_ += value;
  ++count_;
}

Histogram::Snapshot Histogram::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Snapshot{counts_, sum_, count_};
}

void Histogram::Render(const std::string& name, const std::string& labels, std::string* out) const {
  const Snapshot s = snapshot();
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += s.counts[i];
    const double le = i < bounds_.size() ? bounds_[i] : std::numeric_limits<double>::infinity();
    absl::StrAppend(out, name, "_bucket{", labels, sep, "le=\"", FormatValue(le), "\"} ", cumulative, "\n");
  }
  const std::string braces = labels.empty() ? "" : absl::StrCat("{", labels, "}");
  absl::StrAppend(out, name, "_sum", braces, " ", FormatValue(s.sum), "\n");
  absl::StrAppend(out, name, "_count", braces, " ", s.count, "\n");
}

std::vector<double> OneTwoFiveBuckets(int64_t max) {
  std::vector<double> out;
  for (double scale = 1;; scale *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      out.push_back(m * scale);
      if (m * scale >= static_cast<double>(max)) return out;
    }
  }
}

std::string FormatValue(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrCat(static_cast<int64_t>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace kaon::metrics
