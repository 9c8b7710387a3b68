// Benchmark metrics from request timelines, with the definitions of
// `vllm bench serve` (benchmarks/serve.py, calculate_metrics):
//   TTFT  send -> first chunk carrying generated text (vLLM counts the first
//         chunk with `choices`, even an empty one; we require content, so an
//         empty role/keep-alive chunk cannot make a server look faster)
//   ITL   gaps between consecutive content chunks
//   TPOT  (E2EL - TTFT) / (output_tokens - 1), only for output_tokens > 1;
//         output tokens come from the server's usage
//   E2EL  send -> end of stream
// Throughputs divide by the benchmark duration (first send to last finish).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/kaon_bench/request_output.h"

namespace kaon::bench {

struct Distribution {
  double mean_ms = 0, median_ms = 0, std_ms = 0;
  std::vector<std::pair<double, double>> percentiles_ms;  // (p, value)
  size_t count = 0;
};

// --goodput / --slo thresholds in milliseconds; unset means "not checked".
struct SloThresholds {
  std::optional<double> ttft_ms, tpot_ms, e2el_ms;
  bool empty() const { return !ttft_ms && !tpot_ms && !e2el_ms; }
};

struct Metrics {
  double duration_s = 0;
  int64_t num_requests = 0, completed = 0, failed = 0;
  int64_t total_input_tokens = 0, total_output_tokens = 0;
  double request_throughput = 0;       // completed / s
  double request_goodput = 0;          // completed within --goodput / s
  int64_t good_completed = 0;
  double output_throughput = 0;        // output tok / s
  double total_token_throughput = 0;   // (input + output) tok / s
  double peak_output_tokens_per_s = 0; // most content chunks in any 1 s window of the run
  int64_t max_concurrent_requests = 0;
  double mean_concurrency = 0;         // time-averaged requests in flight
  Distribution ttft, tpot, itl, e2el;
  std::map<std::string, int64_t> errors;  // error text -> count
};

// TPOT of one request in seconds, 0 when it produced at most one token (as vLLM).
double RequestTpot(const RequestOutput& r);

// True when a completed request meets every threshold that is set.
bool MeetsSlo(const RequestOutput& r, const SloThresholds& slo);

Metrics ComputeMetrics(const std::vector<RequestOutput>& outputs, double duration_s,
                       const std::vector<double>& percentiles, const SloThresholds& goodput);

// Time-averaged number of requests in flight over [0, duration]: the area
// under the in-flight step function divided by the duration.
double MeanConcurrency(const std::vector<RequestOutput>& outputs, double duration_s);
int64_t MaxConcurrency(const std::vector<RequestOutput>& outputs);
// Content chunks (one token each, as vLLM counts them) per 1 s bucket from
// the start of the run; the largest bucket.
double PeakOutputTokensPerSecond(const std::vector<RequestOutput>& outputs);

}  // namespace kaon::bench
