// SSE framing and what each event does to a request's timeline, plus the
// request bodies and base URLs kaon-bench sends to.
#include "bench/kaon_bench/http_client.h"
#include "bench/kaon_bench/request_body.h"
#include "bench/kaon_bench/sse.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace kaon::bench {
namespace {

TEST(KaonBenchSseParser, AnySplitGivesTheSameEvents) {
  const std::string stream =
      ": keep-alive\n\n"
      "data: {\"a\":1}\n\n"
      "event: message\r\ndata: {\"b\":2}\r\n\r\n"
      "data: line1\ndata: line2\n\n"
      "data: [DONE]\n\n";
  const std::vector<std::string> want = {"{\"a\":1}", "{\"b\":2}", "line1\nline2", "[DONE]"};
  for (size_t split = 0; split <= stream.size(); ++split) {
    SseParser p;
    std::vector<std::string> got = p.Feed(stream.substr(0, split));
    for (auto& e : p.Feed(stream.substr(split))) got.push_back(e);
    ASSERT_EQ(got, want) << "split at " << split;
  }
  SseParser byte_by_byte;
  std::vector<std::string> got;
  for (char c : stream)
    for (auto& e : byte_by_byte.Feed(std::string(1, c))) got.push_back(e);
  EXPECT_EQ(got, want);
}

TEST(KaonBenchStreamAccumulator, TtftIsTheFirstChunkWithText) {
  RequestOutput out;
  out.start_s = 1.0;
  StreamAccumulator acc(&out);
  // Role-only and empty chunks do not start the clock (vLLM's would).
  EXPECT_TRUE(acc.OnEvent(R"({"choices":[{"delta":{"role":"assistant","content":""}}],"usage":null})", 1.05));
  EXPECT_TRUE(acc.OnEvent(R"({"choices":[{"text":""}]})", 1.06));
  EXPECT_TRUE(acc.OnEvent(R"({"choices":[{"delta":{"content":"Hi"}}]})", 1.2));
  EXPECT_TRUE(acc.OnEvent(R"({"choices":[{"text":" there"}]})", 1.25));
  EXPECT_TRUE(acc.OnEvent(R"({"choices":[{"delta":{"content":"!"}}]})", 1.32));
  EXPECT_TRUE(acc.OnEvent(R"({"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4}})", 1.33));
  EXPECT_FALSE(acc.OnEvent("[DONE]", 1.34));
  acc.Finish(1.4);
  EXPECT_TRUE(out.success);
  EXPECT_NEAR(out.ttft_s, 0.2, 1e-12);
  ASSERT_EQ(out.itl_s.size(), 2u);
  EXPECT_NEAR(out.itl_s[0], 0.05, 1e-12);
  EXPECT_NEAR(out.itl_s[1], 0.07, 1e-12);
  EXPECT_NEAR(out.latency_s, 0.4, 1e-12);
  EXPECT_EQ(out.prompt_tokens, 9);
  EXPECT_EQ(out.output_tokens, 4);  // from usage, not the 3 chunks
  EXPECT_TRUE(out.usage_reported);
  EXPECT_EQ(out.generated_text, "Hi there!");
}

TEST(KaonBenchStreamAccumulator, WithoutUsageCountsChunks) {
  RequestOutput out;
  StreamAccumulator acc(&out);
  acc.OnEvent(R"({"choices":[{"text":"a"}]})", 0.1);
  acc.OnEvent(R"({"choices":[{"text":"b"}]})", 0.2);
  acc.Finish(0.3);
  EXPECT_TRUE(out.success);
  EXPECT_EQ(out.output_tokens, 2);
  EXPECT_FALSE(out.usage_reported);
}

TEST(KaonBenchStreamAccumulator, ErrorEventFailsTheRequest) {
  RequestOutput out;
  StreamAccumulator acc(&out);
  acc.OnEvent(R"({"choices":[{"text":"a"}]})", 0.1);
  EXPECT_FALSE(acc.OnEvent(R"({"error":{"message":"step failed","type":"internal_error"}})", 0.2));
  acc.Finish(0.3);
  EXPECT_FALSE(out.success);
  EXPECT_EQ(out.error, "error event: step failed");
}

TEST(KaonBenchStreamAccumulator, EmptyStreamWithoutDoneFails) {
  RequestOutput out;
  StreamAccumulator acc(&out);
  acc.Finish(0.3);
  EXPECT_FALSE(out.success);
  EXPECT_FALSE(out.error.empty());
}

TEST(KaonBenchRequestBody, CompletionsAndChatAsVllmSendsThem) {
  BodyOptions o;
  o.model = "m";
  o.ignore_eos = true;
  auto j = nlohmann::json::parse(BuildRequestBody(o, "hi", 16));
  EXPECT_EQ(j["prompt"], "hi");
  EXPECT_EQ(j["max_tokens"], 16);
  EXPECT_EQ(j["stream"], true);
  EXPECT_EQ(j["stream_options"]["include_usage"], true);
  EXPECT_EQ(j["ignore_eos"], true);
  EXPECT_EQ(j["temperature"], 0.0);
  o.backend = Backend::kOpenAiChat;
  o.ignore_eos = false;
  j = nlohmann::json::parse(BuildRequestBody(o, "hi", 16));
  EXPECT_EQ(j["messages"][0]["content"], "hi");
  EXPECT_EQ(j["max_completion_tokens"], 16);
  EXPECT_FALSE(j.contains("ignore_eos"));
  EXPECT_EQ(DefaultEndpoint(Backend::kOpenAiChat), "/v1/chat/completions");
}

TEST(KaonBenchBaseUrl, Parses) {
  Endpoint e = ParseBaseUrl("http://127.0.0.1:8000");
  EXPECT_EQ(e.host, "127.0.0.1");
  EXPECT_EQ(e.port, "8000");
  EXPECT_EQ(e.base_path, "");
  e = ParseBaseUrl("http://example.com/proxy/");
  EXPECT_EQ(e.host, "example.com");
  EXPECT_EQ(e.port, "80");
  EXPECT_EQ(e.base_path, "/proxy");
  e = ParseBaseUrl("http://[::1]:9000");
  EXPECT_EQ(e.host, "::1");
  EXPECT_EQ(e.port, "9000");
  EXPECT_THROW(ParseBaseUrl("https://api.openai.com"), std::runtime_error);
}

}  // namespace
}  // namespace kaon::bench
