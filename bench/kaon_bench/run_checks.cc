#include "bench/kaon_bench/run_checks.h"

#include <algorithm>
#include <limits>

namespace kaon::bench {

std::optional<std::string> RunInitialTest(const SampleRequest& request, const RunOptions& o) {
  RunOptions one = o;
  one.label = "initial test";
  one.show_progress = false;
  one.request_rate = std::numeric_limits<double>::infinity();
  const RunResult r = RunBenchmark({request}, one);
  if (r.outputs.size() == 1 && r.outputs[0].success) return std::nullopt;
  return r.outputs.empty() || r.outputs[0].error.empty() ? std::string("no response") : OneLine(r.outputs[0].error);
}

void FailureTally::Add(const std::vector<RequestOutput>& outputs) {
  for (const RequestOutput& r : outputs) {
    ++sent_;
    if (r.success) continue;
    ++failed_;
    if (first_error_.empty()) first_error_ = r.error.empty() ? "no error message" : OneLine(r.error);
  }
}

std::optional<std::string> FailureTally::AllFailed() const {
  if (sent_ == 0 || failed_ < sent_) return std::nullopt;
  return "every request failed (" + std::to_string(failed_) + " of " + std::to_string(sent_) +
         "); the first error: " + first_error_;
}

std::string OneLine(std::string error) {
  std::replace(error.begin(), error.end(), '\n', ' ');
  std::replace(error.begin(), error.end(), '\r', ' ');
  return error;
}

}  // namespace kaon::bench
