// The server's Prometheus metrics, named as vLLM's with the kaon: prefix and
// vLLM's types, so dashboards and Kubernetes' Gateway API Inference Extension
// (queued/running gauges, KV usage, cache_config_info's block_size) work
// unchanged. Request-level series are fed by RequestRecorder from any
// front-end thread; engine gauges are read from EngineStats at scrape time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "server/engine/engine.h"
#include "server/metrics/histogram.h"

namespace kaon::metrics {

struct MetricsInfo {
  std::string model_name;
  int64_t block_size = 0;
  int64_t num_kv_blocks = 0;
  int64_t max_model_len = 0;
};

// Why a choice ended, as the finished_reason label says it.
enum class FinishedReason { kStop, kLength, kAbort, kError };
inline constexpr int kNumFinishedReasons = 4;

class ServingMetrics {
 public:
  explicit ServingMetrics(MetricsInfo info);

  void AddPromptTokens(int64_t n) { prompt_tokens_.fetch_add(n, std::memory_order_relaxed); }
  void AddGenerationTokens(int64_t n) { generation_tokens_.fetch_add(n, std::memory_order_relaxed); }
  void AddFinishedChoice(FinishedReason reason);
  void ObserveTimeToFirstToken(double seconds) { ttft_.Observe(seconds); }
  void ObserveInterTokenLatency(double seconds) { itl_.Observe(seconds); }
  // One finished engine request (one prompt, all its choices).
  void ObserveRequest(double e2e_seconds, double tpot_seconds, bool has_tpot, int64_t prompt_tokens,
                      int64_t generation_tokens);

  // The whole exposition, engine gauges and counters included.
  std::string Render(const EngineStats& engine) const;

  int64_t generation_tokens() const { return generation_tokens_.load(std::memory_order_relaxed); }

 private:
  const MetricsInfo info_;
  const std::string labels_;  // model_name="..."
  std::atomic<int64_t> prompt_tokens_{0};
  std::atomic<int64_t> generation_tokens_{0};
  std::array<std::atomic<int64_t>, kNumFinishedReasons> finished_{};
  Histogram ttft_;
  Histogram itl_;
  Histogram tpot_;
  Histogram e2e_;
  Histogram prompt_len_;
  Histogram generation_len_;
};

// Escapes a Prometheus label value (backslash, quote, newline).
std::string EscapeLabel(const std::string& value);

}  // namespace kaon::metrics
