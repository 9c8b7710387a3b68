// kaon-bench against a fake OpenAI server with programmed delays (first text
// chunk after 200 ms, then one every 20 ms, 10 in all): the measured TTFT and
// TPOT must match the program, HTTP 500s must be counted as failures with
// their errors, and the cost section must follow from the measured numbers.
// A failing initial test request stops the run, and a run in which every
// request failed exits non-zero.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/bench/bench_process.h"
#include "tests/common/test_paths.h"

namespace kaon::bench {
namespace {

using Json = nlohmann::json;
using testing::ChildServer;

Json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return Json::parse(in, nullptr, false);
}

class KaonBenchFakeServer : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string script = kaon::testing::SourceDir() + "/tests/bench/fake_openai_server.js";
    ASSERT_TRUE(server_.Start({"node", script, "200", "20", "10"}, "fake: listening on ", 20))
        << "fake server did not start: " << server_.output();
    base_ = "http://127.0.0.1:" + std::to_string(server_.port());
  }

  std::string Tmp(const std::string& name) const { return ::testing::TempDir() + "/" + name; }

  ChildServer server_;
  std::string base_;
};

TEST_F(KaonBenchFakeServer, MeasuresProgrammedLatenciesFailuresAndCost) {
  const std::string prompts = Tmp("fake_prompts.txt");
  {
    std::ofstream f(prompts);
    for (int i = 0; i < 12; ++i) f << (i % 4 == 3 ? "please FAIL this one" : "tell me a story") << "\n";
  }
  const std::string result = Tmp("fake_result.json"), lines = Tmp("fake_requests.jsonl");
  std::string out;
  const int rc = testing::RunKaonBench(
      kaon::testing::BinDir(),
      "--base-url " + base_ + " --dataset-name custom --dataset-path " + prompts +
          " --num-prompts 12 --custom-output-len 10 --max-concurrency 4 --gpu-cost-per-hour 3.6 --num-gpus 2"
          " --api-price-input 1 --api-price-output 2 --goodput ttft:1000 --result-json " + result +
          " --save-requests " + lines + " --disable-tqdm",
      &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("initial test run completed"), std::string::npos) << out;
  const Json r = ReadJson(result);
  ASSERT_TRUE(r.is_object()) << out;
  EXPECT_EQ(r["config"]["model"], "fake-model") << "the model comes from GET /v1/models";

  // 3 of the 12 prompts are programmed to fail with HTTP 500.
  EXPECT_EQ(r["completed"], 9) << out;
  EXPECT_EQ(r["failed"], 3) << out;
  ASSERT_EQ(r["errors"].size(), 1u) << r["errors"].dump();
  const std::string error = r["errors"].begin().key();
  EXPECT_NE(error.find("HTTP 500"), std::string::npos) << error;
  EXPECT_NE(error.find("programmed failure"), std::string::npos) << error;
  EXPECT_EQ(r["errors"].begin().value(), 3);
  EXPECT_NE(out.find("Failed requests:                         3"), std::string::npos) << out;

  // Usage: 10 completion tokens and 7 prompt tokens per successful request.
  EXPECT_EQ(r["total_output_tokens"], 90);
  EXPECT_EQ(r["total_input_tokens"], 63);

  // TTFT: 200 ms (the empty chunk sent at once does not count); TPOT and
  // ITL: 20 ms. Upper bounds leave room for a loaded CI machine.
  const double ttft = r["mean_ttft_ms"], tpot = r["mean_tpot_ms"], itl = r["median_itl_ms"];
  EXPECT_GE(ttft, 195);
  EXPECT_LE(ttft, 300);
  EXPECT_GE(tpot, 18);
  EXPECT_LE(tpot, 28);
  EXPECT_GE(itl, 15);
  EXPECT_LE(itl, 30);
  EXPECT_NEAR(r["mean_e2el_ms"].get<double>(), ttft + 9 * tpot, 1.0);  // TPOT = (E2EL - TTFT) / 9
  EXPECT_EQ(r["request_goodput"].get<double>() > 0, true);

  // Throughputs and cost follow from duration and token counts.
  const double duration = r["duration"];
  EXPECT_NEAR(r["output_throughput"].get<double>(), 90 / duration, 1e-6);
  EXPECT_NEAR(r["total_token_throughput"].get<double>(), 153 / duration, 1e-6);
  EXPECT_LE(r["max_concurrent_requests"].get<int>(), 4);
  const Json& c = r["cost"];
  EXPECT_DOUBLE_EQ(c["usd_per_hour"].get<double>(), 7.2);
  EXPECT_NEAR(c["run_cost_usd"].get<double>(), 7.2 * duration / 3600, 1e-12);
  EXPECT_NEAR(c["usd_per_1m_output_tokens"].get<double>(), 7.2 / 3600 / (90 / duration) * 1e6, 1e-6);
  EXPECT_NEAR(c["api_cost_usd"].get<double>(), (63 * 1.0 + 90 * 2.0) / 1e6, 1e-12);
  EXPECT_NEAR(c["ratio_to_api_price"].get<double>(), c["run_cost_usd"].get<double>() / c["api_cost_usd"].get<double>(),
              1e-9);
  EXPECT_NE(out.find("the API price"), std::string::npos) << out;

  // One JSON line per request.
  std::ifstream in(lines);
  std::string line;
  int n = 0, failed = 0;
  while (std::getline(in, line)) {
    const Json j = Json::parse(line);
    ++n;
    if (!j["success"].get<bool>()) ++failed;
  }
  EXPECT_EQ(n, 12);
  EXPECT_EQ(failed, 3);
}

TEST_F(KaonBenchFakeServer, ChatSweepFindsTheHighestRateMeetingTheSlo) {
  const std::string result = Tmp("fake_sweep.json"), plot = Tmp("fake_sweep.svg");
  std::remove(plot.c_str());
  std::string out;
  const int rc = testing::RunKaonBench(
      kaon::testing::BinDir(),
      "--base-url " + base_ + " --backend openai-chat --model fake-model --dataset-name random"
          " --random-input-len 8 --random-output-len 5 --num-prompts 6 --sweep-rates 20,40"
          " --slo ttft:1000,tpot:100 --gpu-cost-per-hour 1 --sweep-plot " + plot + " --result-json " + result +
          " --disable-tqdm",
      &out);
  ASSERT_EQ(rc, 0) << out;
  const Json r = ReadJson(result);
  ASSERT_EQ(r["sweep"].size(), 2u) << out;
  for (const Json& p : r["sweep"]) {
    EXPECT_EQ(p["slo_attainment"], 1.0) << out;
    EXPECT_EQ(p["metrics"]["total_output_tokens"], 30);  // 6 requests x max_completion_tokens 5
  }
  EXPECT_EQ(r["best_request_rate"], 40.0) << out;
  EXPECT_TRUE(r.contains("best_cost"));
  std::ifstream svg(plot);
  std::string text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.rfind("<svg", 0), 0u) << "no SVG plot at " << plot;
  EXPECT_NE(out.find("Highest rate meeting the SLO"), std::string::npos) << out;

  // An SLO nobody meets: no best rate.
  const int rc2 = testing::RunKaonBench(
      kaon::testing::BinDir(),
      "--base-url " + base_ + " --model fake-model --dataset-name random --random-input-len 8"
          " --random-output-len 3 --num-prompts 3 --sweep-rates 50 --slo ttft:50 --sweep-plot " + plot +
          " --result-json " + result + " --disable-tqdm",
      &out);
  ASSERT_EQ(rc2, 0) << out;
  EXPECT_TRUE(ReadJson(result)["best_request_rate"].is_null()) << out;
}

// The lines of `out` that start with `prefix`.
std::vector<std::string> LinesStartingWith(const std::string& out, const std::string& prefix) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) lines.push_back(line);
  }
  return lines;
}

TEST_F(KaonBenchFakeServer, UnreachableServerStopsAtTheInitialTest) {
  server_.Stop();  // the port is now closed
  const std::string result = Tmp("fake_down.json");
  std::remove(result.c_str());
  std::string out;
  const int rc = testing::RunKaonBench(kaon::testing::BinDir(),
                                       "--base-url " + base_ + " --model m --dataset-name random --random-input-len 4"
                                           " --random-output-len 2 --num-prompts 3 --result-json " + result +
                                           " --disable-tqdm",
                                       &out);
  EXPECT_EQ(rc, 1) << out;
  const std::vector<std::string> errors = LinesStartingWith(out, "kaon-bench: the initial test request failed: ");
  ASSERT_EQ(errors.size(), 1u) << out;
  EXPECT_NE(errors[0].find("connect"), std::string::npos) << out;
  EXPECT_EQ(out.find("Serving Benchmark Result"), std::string::npos) << "no benchmark after a failed test\n" << out;
  EXPECT_FALSE(std::ifstream(result).good()) << "no result written after a failed test";
}

TEST_F(KaonBenchFakeServer, FailingInitialTestRequestStopsTheRun) {
  const std::string prompts = Tmp("fake_fail_prompts.txt");
  {
    std::ofstream f(prompts);
    for (int i = 0; i < 5; ++i) f << "please FAIL\n";
  }
  std::string out;
  const int rc = testing::RunKaonBench(kaon::testing::BinDir(),
                                       "--base-url " + base_ + " --dataset-name custom --dataset-path " + prompts +
                                           " --num-prompts 5 --custom-output-len 4 --disable-tqdm",
                                       &out);
  EXPECT_EQ(rc, 1) << out;
  const std::vector<std::string> errors = LinesStartingWith(out, "kaon-bench: the initial test request failed: ");
  ASSERT_EQ(errors.size(), 1u) << out;
  EXPECT_NE(errors[0].find("HTTP 500"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("programmed failure"), std::string::npos) << errors[0];
  EXPECT_EQ(out.find("Serving Benchmark Result"), std::string::npos) << out;
}

TEST(KaonBenchFailures, EveryRequestFailingExitsNonZero) {
  // The fake answers one request (the initial test) and fails all others.
  ChildServer server;
  const std::string script = kaon::testing::SourceDir() + "/tests/bench/fake_openai_server.js";
  ASSERT_TRUE(server.Start({"node", script, "10", "5", "3", "1"}, "fake: listening on ", 20)) << server.output();
  const std::string result = ::testing::TempDir() + "/fake_all_failed.json";
  std::string out;
  const int rc = testing::RunKaonBench(kaon::testing::BinDir(),
                                       "--base-url http://127.0.0.1:" + std::to_string(server.port()) +
                                           " --dataset-name random --random-input-len 4 --random-output-len 3"
                                           " --num-prompts 4 --result-json " + result + " --disable-tqdm",
                                       &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("initial test run completed"), std::string::npos) << out;
  const std::vector<std::string> why = LinesStartingWith(out, "kaon-bench: every request failed (4 of 4); the first error: ");
  ASSERT_EQ(why.size(), 1u) << out;
  EXPECT_NE(why[0].find("HTTP 500"), std::string::npos) << why[0];
  EXPECT_NE(why[0].find("programmed failure"), std::string::npos) << why[0];
  // The report is still written: it shows what failed.
  const Json r = ReadJson(result);
  ASSERT_TRUE(r.is_object()) << out;
  EXPECT_EQ(r["completed"], 0);
  EXPECT_EQ(r["failed"], 4);
}

}  // namespace
}  // namespace kaon::bench
