// Drives the real server process over raw HTTP/1.1 on 127.0.0.1: what an SDK
// would never send (malformed JSON, wrong methods, unknown paths) as well as
// the golden greedy completion, streamed and not.
#include "tests/http/http_test_util.h"

namespace kaon {
namespace {

using Json = nlohmann::json;
using testing::BundledModel;
using testing::Connection;
using testing::ExpectErrorObject;
using testing::GoldenCase0;
using testing::HttpResponse;
using testing::ServerProcess;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(""); }
  void StartServer(const std::string& chat_template) {
    // The real binary, as users run it.
    std::vector<std::string> kaon = {testing::BinDir() + "/kaon", "serve", BundledModel(), "--port", "0"};
    if (!chat_template.empty()) kaon.insert(kaon.end(), {"--chat-template", chat_template});
    ASSERT_TRUE(server_.Start(kaon)) << "kaon serve did not announce itself";
    EXPECT_NE(server_.line().find(" as stories260k on http://127.0.0.1:"), std::string::npos) << server_.line();
  }
  void TearDown() override {
    if (server_.port() > 0) {
      EXPECT_EQ(server_.Terminate(), 0) << "SIGTERM should stop the server cleanly";
    }
  }
  int port() const { return server_.port(); }

  ServerProcess server_;
};

TEST_F(HttpServerTest, HealthAndModels) {
  Connection c(port());
  ASSERT_TRUE(c.ok());
  auto health = c.Request("GET", "/health", "", "X-Request-Id: my-id-1\r\n");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->Header("x-request-id"), "my-id-1");

  // Same connection: keep-alive.
  auto models = c.Request("GET", "/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  EXPECT_FALSE(models->Header("x-request-id").empty());
  const Json j = models->JsonBody();
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["id"], "stories260k");
  EXPECT_EQ(j["data"][0]["owned_by"], "kaon");
  EXPECT_GT(j["data"][0]["max_model_len"].get<int64_t>(), 0);

  auto one = c.Request("GET", "/v1/models/stories260k");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
}

// The concatenated choices[0].text of an SSE body (or delta.content for
// chat), checking that it ends with "data: [DONE]".
std::string SseText(const std::string& body, int* num_chunks = nullptr) {
  std::string text;
  bool done = false;
  size_t pos = 0;
  int chunks = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "unterminated SSE event";
    if (end == std::string::npos) break;
    const std::string event = body.substr(pos, end - pos);
    pos = end + 2;
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    const std::string data = event.substr(6);
    if (data == "[DONE]") {
      done = true;
      break;
    }
    const Json chunk = Json::parse(data);
    const Json& choice = chunk["choices"][0];
    if (choice.contains("text")) text += choice["text"].get<std::string>();
    if (choice.contains("delta") && choice["delta"].contains("content")) {
      text += choice["delta"]["content"].get<std::string>();
    }
    ++chunks;
  }
  EXPECT_TRUE(done) << "no data: [DONE]";
  EXPECT_EQ(pos, body.size()) << "bytes after [DONE]";
  if (num_chunks != nullptr) *num_chunks = chunks;
  return text;
}

Json GreedyBody(const Json& golden, bool stream) {
  return {{"model", "stories260k"}, {"prompt", golden["prompt"]}, {"temperature", 0},
          {"max_tokens", 128},      {"ignore_eos", true},         {"stream", stream}};
}

TEST_F(HttpServerTest, GreedyCompletionMatchesGolden) {
  const Json golden = GoldenCase0();
  Connection c(port());
  ASSERT_TRUE(c.ok());
  auto r = c.Request("POST", "/v1/completions", GreedyBody(golden, false).dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const Json j = r->JsonBody();
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], golden["greedy_text"]);
  EXPECT_EQ(j["usage"]["completion_tokens"], 128);

  // The same request streamed, on the same connection.
  auto s = c.Request("POST", "/v1/completions", GreedyBody(golden, true).dump());
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200) << s->body;
  EXPECT_EQ(s->Header("content-type"), "text/event-stream");
  int chunks = 0;
  EXPECT_EQ(SseText(s->body, &chunks), golden["greedy_text"]);
  EXPECT_GT(chunks, 1);

  // And the connection is still usable afterwards.
  auto h = c.Request("GET", "/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
}

TEST_F(HttpServerTest, ErrorsAreOpenAiObjects) {
  Connection c(port());
  ASSERT_TRUE(c.ok());

  auto chat = c.Request("POST", "/v1/chat/completions",
                        R"({"model": "stories260k", "messages": [{"role": "user", "content": "hi"}]})");
  ASSERT_TRUE(chat);
  ExpectErrorObject(*chat, 400);
  EXPECT_NE(chat->body.find("--chat-template"), std::string::npos) << chat->body;

  auto malformed = c.Request("POST", "/v1/completions", R"({"model": "stories260k", "prompt": )");
  ASSERT_TRUE(malformed);
  ExpectErrorObject(*malformed, 400);

  auto bad_utf8 = c.Request("POST", "/v1/completions", "{\"model\": \"stories260k\", \"prompt\": \"\xff\xfe\"}");
  ASSERT_TRUE(bad_utf8);
  ExpectErrorObject(*bad_utf8, 400);

  auto unknown_model = c.Request("POST", "/v1/completions", R"({"model": "gpt-4", "prompt": "hi"})");
  ASSERT_TRUE(unknown_model);
  ExpectErrorObject(*unknown_model, 404);

  auto wrong_method = c.Request("GET", "/v1/completions");
  ASSERT_TRUE(wrong_method);
  ExpectErrorObject(*wrong_method, 405);

  auto unknown_path = c.Request("GET", "/v2/nothing");
  ASSERT_TRUE(unknown_path);
  ExpectErrorObject(*unknown_path, 404);

  auto bad_field = c.Request("POST", "/v1/completions", R"({"model": "stories260k", "prompt": "hi", "temperature": -1})");
  ASSERT_TRUE(bad_field);
  ExpectErrorObject(*bad_field, 400);
}

TEST_F(HttpServerTest, OversizedBodyIs413) {
  Connection c(port());
  ASSERT_TRUE(c.ok());
  // Only the header is sent: the limit applies to the declared length.
  ASSERT_TRUE(c.SendRaw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        "Content-Length: 20000000\r\n\r\n{"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  ExpectErrorObject(*r, 413);
}

TEST_F(HttpServerTest, ConcurrentStreamsAllMatchGolden) {
  const Json golden = GoldenCase0();
  constexpr int kClients = 8;
  std::vector<std::string> texts(kClients);
  std::vector<int> statuses(kClients, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      Connection c(port());
      auto r = c.Request("POST", "/v1/completions", GreedyBody(golden, i % 2 == 0).dump());
      if (!r) return;
      statuses[i] = r->status;
      texts[i] = i % 2 == 0 ? SseText(r->body) : r->JsonBody()["choices"][0]["text"].get<std::string>();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(statuses[i], 200) << i;
    EXPECT_EQ(texts[i], golden["greedy_text"]) << i;
  }
}

TEST_F(HttpServerTest, ClientDisconnectMidStreamLeavesServerServing) {
  for (int i = 0; i < 4; ++i) {
    Connection c(port());
    ASSERT_TRUE(c.SendRaw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Content-Length: " +
                          std::to_string(GreedyBody(GoldenCase0(), true).dump().size()) + "\r\n\r\n" +
                          GreedyBody(GoldenCase0(), true).dump()));
    // Dropped without reading: the server's writes fail and its handle aborts.
  }
  const Json golden = GoldenCase0();
  Connection c(port());
  auto r = c.Request("POST", "/v1/completions", GreedyBody(golden, false).dump());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->JsonBody()["choices"][0]["text"], golden["greedy_text"]);
}

TEST_F(HttpServerTest, SigtermWithAStreamInFlightExitsZero) {
  Connection c(port());
  Json body = GreedyBody(GoldenCase0(), true);
  body["max_tokens"] = 400;
  ASSERT_TRUE(c.SendRaw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                        std::to_string(body.dump().size()) + "\r\n\r\n" + body.dump()));
  // TearDown sends SIGTERM while the stream may still be running.
}

TEST_F(HttpServerTest, Http10StreamEndsWithTheConnection) {
  const Json golden = GoldenCase0();
  const std::string body = GreedyBody(golden, true).dump();
  Connection c(port());
  ASSERT_TRUE(c.SendRaw("POST /v1/completions HTTP/1.0\r\nContent-Length: " + std::to_string(body.size()) +
                        "\r\n\r\n" + body));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(SseText(r->body), golden["greedy_text"]);
}

class HttpServerChatTest : public HttpServerTest {
 protected:
  void SetUp() override { StartServer(testing::SourceDir() + "/tests/data/templates/llama2_chat.jinja"); }
};

TEST_F(HttpServerChatTest, ChatWithTemplateFile) {
  Connection c(port());
  const Json body = {{"model", "stories260k"},
                     {"messages", Json::array({{{"role", "user"}, {"content", "Tell me a story"}}})},
                     {"max_tokens", 8},
                     {"temperature", 0}};
  auto r = c.Request("POST", "/v1/chat/completions", body.dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const Json j = r->JsonBody();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  const std::string text = j["choices"][0]["message"]["content"].get<std::string>();

  Json sbody = body;
  sbody["stream"] = true;
  auto s = c.Request("POST", "/v1/chat/completions", sbody.dump());
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200) << s->body;
  EXPECT_EQ(SseText(s->body), text);
}

}  // namespace
}  // namespace kaon
