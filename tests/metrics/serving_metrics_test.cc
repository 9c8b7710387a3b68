#include "server/metrics/serving_metrics.h"

#include <chrono>
#include <regex>
#include <string>

#include "gtest/gtest.h"
#include "server/metrics/request_recorder.h"
#include "tests/common/prometheus_text.h"

namespace kaon::metrics {
namespace {

using Clock = RequestRecorder::Clock;
using std::chrono::milliseconds;

double Sample(const std::string& text, const std::string& series) {
  return kaon::testing::PrometheusSample(text, series);
}

MetricsInfo Info() { return MetricsInfo{"my \"model\"", 16, 100, 512}; }

RequestOutput Tokens(int n, FinishReason reason = FinishReason::kNone) {
  RequestOutput ev;
  ev.token_ids.assign(static_cast<size_t>(n), 7);
  ev.finish_reason = reason;
  return ev;
}

TEST(ServingMetricsTest, StepPhasesAreASummaryPerPhase) {
  ServingMetrics m(Info());
  EngineStats stats;
  stats.num_steps = 4;
  stats.phase_seconds = {.schedule = 0.5, .prepare = 0.25, .forward = 2, .sample = 1, .update = 0.125, .emit = 0.0625};
  const std::string text = m.Render(stats);
  const std::string l = "model_name=\"my \\\"model\\\"\"";
  EXPECT_NE(text.find("# TYPE kaon:engine_step_phase_seconds summary"), std::string::npos);
  for (const auto& [phase, seconds] : {std::pair<const char*, double>{"schedule", 0.5},
                                       {"prepare", 0.25},
                                       {"forward", 2},
                                       {"sample", 1},
                                       {"update", 0.125},
                                       {"emit", 0.0625}}) {
    const std::string labels = "{" + l + ",phase=\"" + phase + "\"}";
    EXPECT_EQ(Sample(text, "kaon:engine_step_phase_seconds_sum" + labels), seconds) << phase;
    EXPECT_EQ(Sample(text, "kaon:engine_step_phase_seconds_count" + labels), 4) << phase;
  }
}

TEST(ServingMetricsTest, EngineGaugesAndTypesFollowVllm) {
  ServingMetrics m(Info());
  EngineStats stats;
  stats.num_running = 3;
  stats.num_waiting = 5;
  stats.kv_cache_usage = 0.25;
  stats.num_preemptions = 2;
  stats.prefix_cache_queries = 40;
  stats.prefix_cache_hits = 16;
  const std::string text = m.Render(stats);
  const std::string l = "{model_name=\"my \\\"model\\\"\"}";
  EXPECT_EQ(Sample(text, "kaon:num_requests_running" + l), 3);
  EXPECT_EQ(Sample(text, "kaon:num_requests_waiting" + l), 5);
  EXPECT_EQ(Sample(text, "kaon:kv_cache_usage_perc" + l), 0.25);
  EXPECT_EQ(Sample(text, "kaon:num_preemptions_total" + l), 2);
  EXPECT_EQ(Sample(text, "kaon:prefix_cache_queries_total" + l), 40);
  EXPECT_EQ(Sample(text, "kaon:prefix_cache_hits_total" + l), 16);
  EXPECT_NE(text.find("kaon:cache_config_info{model_name=\"my \\\"model\\\"\",block_size=\"16\",num_gpu_blocks=\"100\"} 1"),
            std::string::npos);
  for (const char* typed : {"# TYPE kaon:num_requests_running gauge", "# TYPE kaon:kv_cache_usage_perc gauge",
                            "# TYPE kaon:generation_tokens_total counter", "# TYPE kaon:prompt_tokens_total counter",
                            "# TYPE kaon:time_to_first_token_seconds histogram",
                            "# TYPE kaon:e2e_request_latency_seconds histogram",
                            "# TYPE kaon:request_success_total counter"}) {
    EXPECT_NE(text.find(typed), std::string::npos) << typed;
  }
  // Every sample line is "name{labels} value" or "name value".
  const std::regex sample(R"(^kaon:[a-z0-9_:]+(\{[^}]*\})? [-+0-9.eInf]+$)");
  size_t start = 0;
  while (start < text.size()) {
    const size_t eol = text.find('\n', start);
    const std::string line = text.substr(start, eol - start);
    if (line[0] != '#') {
      EXPECT_TRUE(std::regex_match(line, sample)) << line;
    }
    start = eol + 1;
  }
}

TEST(RequestRecorderTest, RecordsTokensLatenciesAndReasons) {
  ServingMetrics m(Info());
  const Clock::time_point t0 = Clock::now();
  {
    RequestRecorder r(&m, /*num_prompt_tokens=*/9, /*num_choices=*/1, t0);
    r.Observe(RequestOutput{}, t0 + milliseconds(5));  // no tokens: not a first token
    r.Observe(Tokens(1), t0 + milliseconds(100));
    r.Observe(Tokens(2), t0 + milliseconds(150));
    r.Observe(Tokens(1, FinishReason::kLength), t0 + milliseconds(400));
    EXPECT_TRUE(r.finished());
    EXPECT_EQ(r.generation_tokens(), 4);
    ASSERT_TRUE(r.ttft_seconds().has_value());
    EXPECT_NEAR(*r.ttft_seconds(), 0.1, 1e-9);
  }
  const std::string text = m.Render(EngineStats{});
  const std::string l = "{model_name=\"my \\\"model\\\"\"";
  EXPECT_EQ(Sample(text, "kaon:generation_tokens_total" + l), 4);
  EXPECT_EQ(Sample(text, "kaon:prompt_tokens_total" + l), 9);
  EXPECT_EQ(Sample(text, "kaon:request_success_total" + l + ",finished_reason=\"length\"}"), 1);
  EXPECT_EQ(Sample(text, "kaon:request_success_total" + l + ",finished_reason=\"abort\"}"), 0);
  EXPECT_NEAR(Sample(text, "kaon:time_to_first_token_seconds_sum" + l), 0.1, 1e-9);
  EXPECT_EQ(Sample(text, "kaon:inter_token_latency_seconds_count" + l), 2);
  EXPECT_NEAR(Sample(text, "kaon:inter_token_latency_seconds_sum" + l), 0.3, 1e-9);
  // TPOT = (last - first token) / (tokens - 1) = 0.3 s / 3.
  EXPECT_NEAR(Sample(text, "kaon:time_per_output_token_seconds_sum" + l), 0.1, 1e-9);
  EXPECT_NEAR(Sample(text, "kaon:e2e_request_latency_seconds_sum" + l), 0.4, 1e-9);
  EXPECT_EQ(Sample(text, "kaon:request_generation_tokens_bucket" + l + ",le=\"2\"}"), 0);
  EXPECT_EQ(Sample(text, "kaon:request_generation_tokens_bucket" + l + ",le=\"5\"}"), 1);
  EXPECT_EQ(Sample(text, "kaon:request_prompt_tokens_sum" + l), 9);
}

TEST(RequestRecorderTest, UnfinishedChoicesCountAsAbortedOnDestruction) {
  ServingMetrics m(Info());
  const Clock::time_point t0 = Clock::now();
  {
    RequestRecorder r(&m, 3, /*num_choices=*/3, t0);
    RequestOutput stop = Tokens(2, FinishReason::kStop);
    r.Observe(stop, t0 + milliseconds(10));
    r.Observe(Tokens(1), t0 + milliseconds(20));
    EXPECT_FALSE(r.finished());
  }
  const std::string text = m.Render(EngineStats{});
  const std::string l = "{model_name=\"my \\\"model\\\"\"";
  EXPECT_EQ(Sample(text, "kaon:request_success_total" + l + ",finished_reason=\"stop\"}"), 1);
  EXPECT_EQ(Sample(text, "kaon:request_success_total" + l + ",finished_reason=\"abort\"}"), 2);
  EXPECT_EQ(Sample(text, "kaon:generation_tokens_total" + l), 3);
  EXPECT_EQ(Sample(text, "kaon:prompt_tokens_total" + l), 3);
  // An aborted request has no end-to-end latency.
  EXPECT_EQ(Sample(text, "kaon:e2e_request_latency_seconds_count" + l), 0);
}

TEST(RequestRecorderTest, StepErrorsAreTheirOwnReason) {
  ServingMetrics m(Info());
  {
    RequestRecorder r(&m, 1, 1);
    RequestOutput ev;
    ev.error = "engine step failed: boom";
    r.Observe(ev);
    EXPECT_TRUE(r.finished());
  }
  const std::string text = m.Render(EngineStats{});
  EXPECT_EQ(Sample(text, "kaon:request_success_total{model_name=\"my \\\"model\\\"\",finished_reason=\"error\"}"), 1);
}

}  // namespace
}  // namespace kaon::metrics
