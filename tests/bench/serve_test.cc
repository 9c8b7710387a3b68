// kaon-bench against the real `kaon serve` with the bundled model: a short
// run completes without failures, and the output tokens it counted (from
// usage) equal the server's own kaon:generation_tokens_total delta.
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/bench/bench_process.h"
#include "tests/common/test_paths.h"

namespace kaon::bench {
namespace {

using Json = nlohmann::json;

// The value of kaon:generation_tokens_total (summed over label sets), or -1.
double GenerationTokens(const std::string& metrics) {
  std::istringstream in(metrics);
  std::string line;
  double total = -1;
  while (std::getline(in, line)) {
    if (line.rfind("kaon:generation_tokens_total", 0) != 0) continue;
    const char next = line.size() > 28 ? line[28] : ' ';
    if (next != '{' && next != ' ') continue;  // another metric with this prefix
    total = (total < 0 ? 0 : total) + std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

TEST(KaonBenchServe, OutputTokensMatchServerMetrics) {
  testing::ChildServer server;
  ASSERT_TRUE(server.Start({kaon::testing::BinDir() + "/kaon", "serve", kaon::testing::BundledModelDir(), "--port", "0"},
                           "kaon: serving ", 30))
      << server.output();
  const int port = server.port();
  const double before = GenerationTokens(testing::HttpGet(port, "/metrics"));
  ASSERT_GE(before, 0) << "GET /metrics has no kaon:generation_tokens_total line";

  const std::string result = ::testing::TempDir() + "/serve_result.json";
  std::string out;
  const int rc = testing::RunKaonBench(
      kaon::testing::BinDir(),
      "--base-url http://127.0.0.1:" + std::to_string(port) +
          " --dataset-name random --num-prompts 20 --random-input-len 32 --random-output-len 16 --ignore-eos"
          " --request-rate 50 --seed 1 --tokenizer " + kaon::testing::BundledModelDir() +
          " --gpu-cost-per-hour 1 --result-json " + result + " --disable-tqdm",
      &out);
  ASSERT_EQ(rc, 0) << out;
  std::ifstream in(result);
  const Json r = Json::parse(in, nullptr, false);
  ASSERT_TRUE(r.is_object()) << out;
  EXPECT_EQ(r["completed"], 20) << out;
  EXPECT_EQ(r["failed"], 0) << out;
  EXPECT_EQ(r["total_output_tokens"], 20 * 16) << "--ignore-eos: every request generates max_tokens\n" << out;
  // 32 prompt tokens (exact, from the local tokenizer) + BOS per request.
  EXPECT_EQ(r["total_input_tokens"], 20 * 33) << out;

  const double after = GenerationTokens(testing::HttpGet(port, "/metrics"));
  EXPECT_EQ(after - before, r["total_output_tokens"].get<double>())
      << "kaon:generation_tokens_total went from " << before << " to " << after << "\n" << out;
  std::cout << out;
}

}  // namespace
}  // namespace kaon::bench
