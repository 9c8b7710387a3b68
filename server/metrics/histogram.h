// A Prometheus histogram with fixed upper bounds: cumulative bucket counts,
// a sum and a count, rendered in the text exposition format. Observe() and
// Render() may be called from any thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace kaon::metrics {

class Histogram {
 public:
  // `bounds` must be strictly increasing; +Inf is implied.
  explicit Histogram(std::vector<double> bounds);

  void Observe(double value);

  // The _bucket/_sum/_count lines for `name` with `labels` ("k=\"v\"", may
  // be empty) prepended to each sample's own labels.
  void Render(const std::string& name, const std::string& labels, std::string* out) const;

  struct Snapshot {
    std::vector<uint64_t> counts;  // per bound, not cumulative; last = above every bound
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  const std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;  // bounds_.size() + 1
  double sum_ = 0;
  uint64_t count_ = 0;
};

// 1, 2, 5, 10, 20, 50, ... up to and including the first value ≥ max, as
// vLLM sizes its token-count histograms by max_model_len.
std::vector<double> OneTwoFiveBuckets(int64_t max);

// Formats a sample value the way Prometheus clients do (integers without a
// fraction, "+Inf").
std::string FormatValue(double v);

}  // namespace kaon::metrics
