// End to end through the API layer and a real engine: a parsed completion
// request on the bundled model reproduces golden.json's greedy text, both as
// one response and as concatenated stream chunks.
#include <fstream>

#include "server/api/completion_request.h"
#include "server/api/response_builder.h"
#include "server/engine/engine.h"
#include "tests/api/api_test_util.h"

namespace kaon::api {
namespace {

using nlohmann::ordered_json;

struct Served {
  std::unique_ptr<Engine> engine;
  ServingContext ctx;
};

Served Serve() {
  Served s;
  EngineConfig config;
  config.options.num_threads = 2;
  auto engine = Engine::Create(kaon::testing::BundledModelDir(), config);
  EXPECT_TRUE(engine.ok()) << engine.status();
  if (!engine.ok()) return s;
  s.engine = std::move(*engine);
  s.ctx.served_model_name = "stories260k";
  s.ctx.tokenizer = &s.engine->tokenizer();
  s.ctx.max_model_len = s.engine->max_model_len();
  s.ctx.vocab_size = s.engine->info().config.vocab_size;
  return s;
}

// Runs every prompt of the request and feeds the builder; returns the SSE text.
std::string RunRequest(Engine& engine, const ParsedRequest& req, ResponseBuilder& builder) {
  std::string sse;
  for (size_t i = 0; i < req.prompts.size(); ++i) {
    auto handle = engine.Submit(ToGenerationRequest(req, i));
    EXPECT_TRUE(handle.ok()) << handle.status();
    if (!handle.ok()) return sse;
    while (std::optional<RequestOutput> ev = (*handle)->Next()) {
      for (const std::string& chunk : builder.Add(i, *ev)) sse += chunk;
    }
  }
  if (req.stream) {
    for (const std::string& chunk : builder.FinishStream()) sse += chunk;
  }
  return sse;
}

TEST(ApiEngine, GreedyCompletionMatchesGoldenStreamingAndNot) {
  Served s = Serve();
  ASSERT_NE(s.engine, nullptr);
  const ordered_json golden =
      ordered_json::parse(std::ifstream(kaon::testing::BundledModelDir() + "/golden.json"))["cases"][0];
  ASSERT_EQ(golden["prompt"], "Once upon a time");
  const std::string expected = golden["greedy_text"];

  ordered_json body = {{"model", "stories260k"},
                       {"prompt", "Once upon a time"},
                       {"temperature", 0},
                       {"max_tokens", 128},
                       {"ignore_eos", true}};
  {
    const ParseResult parsed = ParseCompletionRequest(body, s.ctx);
    const ParsedRequest& req = testing::RequestOf(parsed);
    ASSERT_EQ(req.prompts[0], golden["prompt_token_ids"].get<std::vector<int32_t>>());
    ResponseBuilder b(req, s.engine->tokenizer(), ResponseMeta::Make(req.kind, req.model));
    RunRequest(*s.engine, req, b);
    ASSERT_FALSE(b.error().has_value());
    const ordered_json r = b.Response();
    EXPECT_EQ(r["choices"][0]["text"], expected);
    EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(r["usage"]["prompt_tokens"], 5);
    EXPECT_EQ(r["usage"]["completion_tokens"], 128);
  }
  {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    const ParseResult parsed = ParseCompletionRequest(body, s.ctx);
    const ParsedRequest& req = testing::RequestOf(parsed);
    ResponseBuilder b(req, s.engine->tokenizer(), ResponseMeta::Make(req.kind, req.model));
    const std::string sse = RunRequest(*s.engine, req, b);
    std::string text;
    int content_chunks = 0;
    bool done = false;
    bool saw_usage = false;
    size_t pos = 0;
    while (pos < sse.size()) {
      const size_t end = sse.find("\n\n", pos);
      ASSERT_NE(end, std::string::npos);
      const std::string line = sse.substr(pos, end - pos);
      pos = end + 2;
      ASSERT_EQ(line.rfind("data: ", 0), 0u) << line;
      if (line == "data: [DONE]") {
        done = true;
        continue;
      }
      EXPECT_FALSE(done) << "a chunk after [DONE]";
      const ordered_json chunk = ordered_json::parse(line.substr(6));
      if (chunk["choices"].empty()) {
        saw_usage = true;
        EXPECT_EQ(chunk["usage"]["completion_tokens"], 128);
        continue;
      }
      const std::string piece = chunk["choices"][0]["text"];
      if (chunk["choices"][0]["finish_reason"].is_null()) {
        EXPECT_FALSE(piece.empty()) << "a content chunk without text";
        ++content_chunks;
      }
      text += piece;
    }
    EXPECT_TRUE(done);
    EXPECT_TRUE(saw_usage);
    EXPECT_GT(content_chunks, 1);
    EXPECT_EQ(text, expected);
  }
}

}  // namespace
}  // namespace kaon::api
