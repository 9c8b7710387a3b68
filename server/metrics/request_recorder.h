// Follows one engine request (one prompt and its n choices) through its
// events and records it in ServingMetrics: tokens as they are delivered,
// TTFT at the first token, inter-token gaps, and on completion the latency
// histograms and one finished_reason per choice. A recorder destroyed before
// every choice finished (client gone, shutdown) counts the rest as aborted,
// so the counters always add up. Use from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "server/engine/request_output.h"
#include "server/metrics/serving_metrics.h"

namespace kaon::metrics {

class RequestRecorder {
 public:
  using Clock = std::chrono::steady_clock;

  // `metrics` may be null (nothing is recorded, timings are still kept).
  RequestRecorder(ServingMetrics* metrics, int64_t num_prompt_tokens, int32_t num_choices,
                  Clock::time_point arrival = Clock::now());
  ~RequestRecorder();
  RequestRecorder(const RequestRecorder&) = delete;
  RequestRecorder& operator=(const RequestRecorder&) = delete;

  void Observe(const RequestOutput& event, Clock::time_point now = Clock::now());

  bool finished() const { return num_finished_ == num_choices_; }
  int64_t generation_tokens() const { return generation_tokens_; }
  int64_t prompt_tokens() const { return num_prompt_tokens_; }
  // Seconds from arrival to the first token, if one came.
  std::optional<double> ttft_seconds() const;

 private:
  void Complete(Clock::time_point now);

  ServingMetrics* metrics_;
  int64_t num_prompt_tokens_;
  int32_t num_choices_;
  int32_t num_finished_ = 0;
  Clock::time_point arrival_;
  std::optional<Clock::time_point> first_token_;
  Clock::time_point last_token_;
  int64_t generation_tokens_ = 0;
};

}  // namespace kaon::metrics
