#include "server/metrics/serving_metrics.h"

#include "absl/strings/str_cat.h"

namespace kaon::metrics {
namespace {

// vLLM's bucket bounds; the first ITL/TPOT buckets are finer because small
// models on a CPU produce tokens in well under 10 ms.
std::vector<double> TtftBuckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
}
std::vector<double> TokenLatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4,
          0.5,   0.75,   1.0,   2.5,  5.0,   7.5,  10.0,  20.0, 40.0, 80.0};
}
std::vector<double> E2eBuckets() {
  return {0.3,  0.5,  0.8,  1.0,  1.5,  2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
          30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}

const char* ReasonLabel(int reason) {
  switch (static_cast<FinishedReason>(reason)) {
    case FinishedReason::kStop: return "stop";
    case FinishedReason::kLength: return "length";
    case FinishedReason::kAbort: return "abort";
    case FinishedReason::kError: return "error";
  }
  return "unknown";
}

void Header(std::string* out, const std::string& name, const char* type, const char* help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

}  // namespace

std::string EscapeLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

ServingMetrics::ServingMetrics(MetricsInfo info)
    : info_(std::move(info)),
      labels_(absl::StrCat("model_name=\"", EscapeLabel(info_.model_name), "\"")),
      ttft_(TtftBuckets()),
      itl_(TokenLatencyBuckets()),
      tpot_(TokenLatencyBuckets()),
      e2e_(E2eBuckets()),
      prompt_len_(OneTwoFiveBuckets(info_.max_model_len)),
      generation_len_(OneTwoFiveBuckets(info_.max_model_len)) {}

void ServingMetrics::AddFinishedChoice(FinishedReason reason) {
  finished_[static_cast<size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
}

void ServingMetrics::ObserveRequest(double e2e_seconds, double tpot_seconds, bool has_tpot, int64_t prompt_tokens,
                                    int64_t generation_tokens) {
  e2e_.Observe(e2e_seconds);
  if (has_tpot) tpot_.Observe(tpot_seconds);
  prompt_len_.Observe(static_cast<double>(prompt_tokens));
  generation_len_.Observe(static_cast<double>(generation_tokens));
}

std::string ServingMetrics::Render(const EngineStats& engine) const {
  std::string out;
  const std::string& l = labels_;
  auto gauge = [&](const char* name, const char* help, double value) {
    const std::string n = absl::StrCat("kaon:", name);
    Header(&out, n, "gauge", help);
    absl::StrAppend(&out, n, "{", l, "} ", FormatValue(value), "\n");
  };
  auto counter = [&](const char* name, const char* help, double value) {
    const std::string n = absl::StrCat("kaon:", name);
    Header(&out, n, "counter", help);
    absl::StrAppend(&out, n, "{", l, "} ", FormatValue(value), "\n");
  };
  auto histogram = [&](const char* name, const char* help, const Histogram& h) {
    const std::string n = absl::StrCat("kaon:", name);
    Header(&out, n, "histogram", help);
    h.Render(n, l, &out);
  };

  gauge("num_requests_running", "Requests in the running batch.", static_cast<double>(engine.num_running));
  gauge("num_requests_waiting", "Requests waiting to be scheduled.", static_cast<double>(engine.num_waiting));
  gauge("kv_cache_usage_perc", "Fraction of KV cache blocks in use (1 = full).", engine.kv_cache_usage);
  Header(&out, "kaon:cache_config_info", "gauge", "KV cache configuration (labels); value is always 1.");
  absl::StrAppend(&out, "kaon:cache_config_info{", l, ",block_size=\"", info_.block_size, "\",num_gpu_blocks=\"",
                  info_.num_kv_blocks, "\"} 1\n");
  counter("num_preemptions_total", "Requests preempted (recomputed later) for lack of KV blocks.",
          static_cast<double>(engine.num_preemptions));
  counter("prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.",
          static_cast<double>(engine.prefix_cache_queries));
  counter("prefix_cache_hits_total", "Prompt tokens found in the prefix cache.",
          static_cast<double>(engine.prefix_cache_hits));
  counter("prompt_tokens_total", "Prompt tokens of finished or aborted requests.",
          static_cast<double>(prompt_tokens_.load(std::memory_order_relaxed)));
  counter("generation_tokens_total", "Generated tokens delivered to clients.",
          static_cast<double>(generation_tokens_.load(std::memory_order_relaxed)));

  // Where engine steps spend their time (host phases and the forward pass),
  // as a summary without quantiles: rate(_sum) / rate(_count) is the mean.
  Header(&out, "kaon:engine_step_phase_seconds", "summary", "Seconds per engine step phase.");
  const StepPhaseSeconds& ph = engine.phase_seconds;
  for (const auto& [phase, seconds] : {std::pair<const char*, double>{"schedule", ph.schedule},
                                       {"prepare", ph.prepare},
                                       {"forward", ph.forward},
                                       {"sample", ph.sample},
                                       {"update", ph.update},
                                       {"emit", ph.emit}}) {
    absl::StrAppend(&out, "kaon:engine_step_phase_seconds_sum{", l, ",phase=\"", phase, "\"} ", FormatValue(seconds),
                    "\n");
    absl::StrAppend(&out, "kaon:engine_step_phase_seconds_count{", l, ",phase=\"", phase, "\"} ", engine.num_steps,
                    "\n");
  }

  Header(&out, "kaon:request_success_total", "counter", "Finished choices by finish reason.");
  for (int i = 0; i < kNumFinishedReasons; ++i) {
    absl::StrAppend(&out, "kaon:request_success_total{", l, ",finished_reason=\"", ReasonLabel(i), "\"} ",
                    finished_[static_cast<size_t>(i)].load(std::memory_order_relaxed), "\n");
  }
  histogram("time_to_first_token_seconds", "Time from arrival to the first generated token.", ttft_);
  histogram("inter_token_latency_seconds", "Time between successive token deliveries.", itl_);
  histogram("time_per_output_token_seconds", "Per request: (e2e - ttft) / (generated tokens - 1).", tpot_);
  histogram("e2e_request_latency_seconds", "Time from arrival to the last token.", e2e_);
  histogram("request_prompt_tokens", "Prompt length of finished requests.", prompt_len_);
  histogram("request_generation_tokens", "Generated tokens per finished request.", generation_len_);
  return out;
}

}  // namespace kaon::metrics
