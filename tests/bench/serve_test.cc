// kaon-bench against the real `kaon serve` with the bundled model: a short
// run completes without failures, and the output tokens it counted (from
// usage), plus those of its initial test request, equal the server's own
// kaon:generation_tokens_total delta; over OpenAI HTTP and over gRPC
// (--backend kaon-grpc), where a wrong --model must stop the run at its
// initial test request with NOT_FOUND.
#include <cstdio>
#include <fstream>
#include <regex>
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

// `kaon serve --port 0 --grpc-port 0`: false unless both ports were announced.
bool StartWithGrpc(testing::ChildServer& server, int* grpc_port) {
  if (!server.Start({kaon::testing::BinDir() + "/kaon", "serve", kaon::testing::BundledModelDir(), "--port", "0",
                     "--grpc-port", "0"},
                    "kaon: serving ", 30)) {
    return false;
  }
  std::smatch m;
  const std::regex grpc_line(R"(kaon: grpc on [^\s:]+:(\d+)\n)");
  if (!std::regex_search(server.output(), m, grpc_line)) return false;
  *grpc_port = std::stoi(m[1]);
  return *grpc_port > 0;
}

// kaon-bench's initial test request: the dataset's first, --random-output-len
// 16 with --ignore-eos, sent before the measured run.
constexpr double kInitialTestTokens = 16;

Json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return Json::parse(in, nullptr, false);
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

  // The server also counted the initial test request (16 tokens, unmeasured).
  const double after = GenerationTokens(testing::HttpGet(port, "/metrics"));
  EXPECT_EQ(after - before, r["total_output_tokens"].get<double>() + kInitialTestTokens)
      << "kaon:generation_tokens_total went from " << before << " to " << after << "\n" << out;
  std::cout << out;
}

TEST(KaonBenchServe, GrpcOutputTokensMatchServerMetrics) {
  testing::ChildServer server;
  int grpc_port = 0;
  ASSERT_TRUE(StartWithGrpc(server, &grpc_port)) << server.output();
  const int port = server.port();
  const double before = GenerationTokens(testing::HttpGet(port, "/metrics"));
  ASSERT_GE(before, 0) << "GET /metrics has no kaon:generation_tokens_total line";

  const std::string result = ::testing::TempDir() + "/serve_grpc_result.json";
  const std::string requests = ::testing::TempDir() + "/serve_grpc_requests.jsonl";
  std::string out;
  // No --model: it comes from ListModels.
  const int rc = testing::RunKaonBench(
      kaon::testing::BinDir(),
      "--backend kaon-grpc --base-url grpc://127.0.0.1:" + std::to_string(grpc_port) +
          " --dataset-name random --num-prompts 20 --random-input-len 32 --random-output-len 16 --ignore-eos"
          " --request-rate 50 --max-concurrency 8 --seed 1 --tokenizer " + kaon::testing::BundledModelDir() +
          " --result-json " + result + " --save-requests " + requests + " --disable-tqdm",
      &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("model stories260k"), std::string::npos) << out;
  const Json r = ReadJson(result);
  ASSERT_TRUE(r.is_object()) << out;
  EXPECT_EQ(r["completed"], 20) << out;
  EXPECT_EQ(r["failed"], 0) << out;
  EXPECT_EQ(r["total_output_tokens"], 20 * 16) << "--ignore-eos: every request generates max_tokens\n" << out;
  EXPECT_EQ(r["total_input_tokens"], 20 * 33) << "usage's prompt tokens: 32 + BOS\n" << out;
  EXPECT_GT(r["mean_ttft_ms"].get<double>(), 0) << out;

  // Every request's timeline: usage reported, TTFT inside E2EL, one ITL gap
  // per content message after the first, generated text collected.
  std::ifstream lines(requests);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    const Json q = Json::parse(line, nullptr, false);
    ASSERT_TRUE(q.is_object()) << line;
    ++n;
    EXPECT_TRUE(q["success"].get<bool>()) << line;
    EXPECT_TRUE(q["usage_reported"].get<bool>()) << line;
    EXPECT_EQ(q["output_tokens"], 16) << line;
    EXPECT_GT(q["ttft_ms"].get<double>(), 0) << line;
    EXPECT_LE(q["ttft_ms"].get<double>(), q["e2el_ms"].get<double>()) << line;
    EXPECT_GE(q["content_chunks"].get<int>(), 1) << line;
    EXPECT_EQ(q["itl_ms"].size(), q["content_chunks"].get<size_t>() - 1) << line;
    EXPECT_FALSE(q["generated_text"].get<std::string>().empty()) << line;
  }
  EXPECT_EQ(n, 20);

  // The server also counted the initial test request (16 tokens, unmeasured).
  const double after = GenerationTokens(testing::HttpGet(port, "/metrics"));
  EXPECT_EQ(after - before, r["total_output_tokens"].get<double>() + kInitialTestTokens)
      << "kaon:generation_tokens_total went from " << before << " to " << after << "\n" << out;
  std::cout << out;
}

// A wrong --model fails the initial test request: one line with the gRPC
// status and the server's message, exit 1, no benchmark.
TEST(KaonBenchServe, GrpcWrongModelStopsAtTheInitialTestWithNotFound) {
  testing::ChildServer server;
  int grpc_port = 0;
  ASSERT_TRUE(StartWithGrpc(server, &grpc_port)) << server.output();
  const std::string result = ::testing::TempDir() + "/serve_grpc_wrong_model.json";
  std::remove(result.c_str());
  std::string out;
  const int rc = testing::RunKaonBench(
      kaon::testing::BinDir(),
      "--backend kaon-grpc --base-url 127.0.0.1:" + std::to_string(grpc_port) +
          " --model no-such-model --dataset-name random --num-prompts 5 --random-input-len 8"
          " --random-output-len 4 --tokenizer " + kaon::testing::BundledModelDir() + " --result-json " + result +
          " --disable-tqdm",
      &out);
  EXPECT_EQ(rc, 1) << out;
  const std::regex line(R"(\nkaon-bench: the initial test request failed: gRPC NOT_FOUND: [^\n]*no-such-model[^\n]*\n)");
  EXPECT_TRUE(std::regex_search(out, line)) << out;
  EXPECT_EQ(out.find("Serving Benchmark Result"), std::string::npos) << out;
  EXPECT_FALSE(std::ifstream(result).good()) << "no result written after a failed test";
}

}  // namespace
}  // namespace kaon::bench
