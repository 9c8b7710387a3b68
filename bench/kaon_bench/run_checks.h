// The checks that keep a benchmark from reporting nothing as a result: the
// initial single-request test run `vllm bench serve` makes (a wrong URL,
// model, key or endpoint fails one request, not thousands, and the run stops
// with the server's answer), and "every request failed" after a run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bench/kaon_bench/dataset.h"
#include "bench/kaon_bench/request_output.h"
#include "bench/kaon_bench/runner.h"

namespace kaon::bench {

// Sends `request` alone (no progress output) and returns its error, or
// nullopt when it succeeded. Not measured: its KV blocks may serve the run's
// first request from the prefix cache, as in vLLM.
std::optional<std::string> RunInitialTest(const SampleRequest& request, const RunOptions& o);

// Tallies measured requests across the runs of one invocation (one, or one
// per sweep rate).
class FailureTally {
 public:
  void Add(const std::vector<RequestOutput>& outputs);
  // "every request failed (3 of 3); the first error: HTTP 500: ...", or
  // nullopt when at least one succeeded (or none was sent).
  std::optional<std::string> AllFailed() const;

 private:
  int64_t sent_ = 0, failed_ = 0;
  std::string first_error_;
};

// `error` on one line: the server's body may hold newlines.
std::string OneLine(std::string error);

}  // namespace kaon::bench
