// What an attacker or a careless client sends, against the real `kaon serve`
// on loopback: malformed HTTP, bodies nested to overflow a recursive parser,
// bodies with very many keys or values, slow chat templates, forged request
// ids. Each gets a clear answer (and protocol errors a closed connection
// after it), and the server keeps answering everyone else meanwhile.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "tests/http/http_test_util.h"

namespace kaon::testing {
namespace {

// The default limits these tests check just below and just above.
constexpr int kDepth = 128;
constexpr int kObjectKeys = 10'000;
constexpr int kElements = 500'000;
constexpr int kPrompts = 1024;

std::string Nested(int depth) { return std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']'); }

std::string MessageOf(const HttpResponse& r) {
  const Json j = r.JsonBody();
  return j.is_object() && j.contains("error") ? j["error"]["message"].get<std::string>() : r.body;
}

class HostileHttpTest : public ::testing::Test {
 protected:
  // With llama2-chat's template unless `extra` names another.
  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {BinDir() + "/kaon", "serve", BundledModel(), "--port", "0"};
    if (std::find(extra.begin(), extra.end(), "--chat-template") == extra.end()) {
      argv.insert(argv.end(), {"--chat-template", SourceDir() + "/tests/data/templates/llama2_chat.jinja"});
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    log_path_ = ::testing::TempDir() + "/kaon_hostile_" + std::to_string(::getpid()) + ".log";
    ASSERT_TRUE(server_.Start(argv, log_path_)) << "kaon serve did not announce itself";
  }
  void TearDown() override {
    if (server_.running()) {
      const int code = server_.Terminate();
      // The server's stderr (its log, and any sanitizer report) says why.
      std::ifstream log(log_path_);
      const std::string err((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      EXPECT_EQ(code, 0) << "the server should still stop cleanly; its stderr:\n" << err;
    }
  }

  std::optional<HttpResponse> Post(const std::string& path, const std::string& body,
                                   const std::string& headers = "") {
    Connection c(server_.port());
    return c.Request("POST", path, body, headers);
  }

  // /health answers 200 (the server neither crashed nor stalled).
  void ExpectHealthy() {
    Connection c(server_.port());
    std::optional<HttpResponse> r = c.Request("GET", "/health");
    ASSERT_TRUE(r) << "no answer from /health";
    EXPECT_EQ(r->status, 200);
  }

  std::string Log() const {
    std::ifstream in(log_path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  ServerProcess server_;
  std::string log_path_;
};

// Sends raw bytes and reads until the server closes: the status line's code
// (0 if nothing came) and whether the connection was closed.
struct RawOutcome {
  int status = 0;
  std::string message;
  bool closed = false;
};
RawOutcome SendRaw(int port, const std::string& bytes, bool half_close = false) {
  Connection c(port);
  RawOutcome out;
  if (!c.SendRaw(bytes)) return out;
  if (half_close) c.ShutdownWrite();
  std::optional<HttpResponse> r = c.ReadResponse();
  if (r) {
    out.status = r->status;
    out.message = MessageOf(*r);
  }
  out.closed = c.WaitClosed(std::chrono::seconds(5));
  return out;
}

TEST_F(HostileHttpTest, ProtocolErrorsGetAnAnswerThenTheConnectionCloses) {
  Start({"--request-body-timeout", "1", "--timeout-keep-alive", "1", "--max-request-bytes", "64K"});
  std::string header_bomb = "GET /health HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 400; ++i) header_bomb += "X-Pad-" + std::to_string(i) + ": " + std::string(100, 'a') + "\r\n";
  struct Case {
    const char* name;
    std::string bytes;
    int status;
    bool half_close = false;
  };
  const std::vector<Case> cases = {
      {"header bomb", header_bomb + "\r\n", 431},
      {"URL past the header limit", "GET /" + std::string(40'000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
      {"URL past the URL limit", "GET /" + std::string(9'000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
      {"HTTP/0.9", "GET /health\r\n\r\n", 505},
      {"HTTP/2.0", "GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505},
      {"a body that never completes",
       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompt\"", 408},
      {"headers that never complete", "GET /health HTTP/1.1\r\nHost: x\r\n", 408},
      {"a body cut short", "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}", 400, true},
      {"two Content-Lengths",
       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400},
      {"Content-Length and chunked",
       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400},
      {"bad chunk size", "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
       400},
      {"a header with a space in its name", "GET /health HTTP/1.1\r\nHo st: x\r\n\r\n", 400},
      {"binary garbage", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15), 400},
      {"POST without a length", "POST /v1/completions HTTP/1.1\r\nHost: x\r\n\r\n", 411},
      {"a body 10x the limit",
       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 655360\r\n\r\n" + std::string(655'360, '['), 413},
  };
  for (const Case& c : cases) {
    RawOutcome out = SendRaw(server_.port(), c.bytes, c.half_close);
    EXPECT_EQ(out.status, c.status) << c.name << ": " << out.message;
    EXPECT_FALSE(out.message.empty()) << c.name;
    EXPECT_TRUE(out.closed) << c.name << ": the connection should close after a protocol error";
  }
  // A lying Content-Length that is too short: the rest is read as the next
  // request, which is garbage, and is answered as such.
  Connection c(server_.port());
  ASSERT_TRUE(c.SendRaw("POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}\"}} / HTTP/1.1\r\n\r\n"));
  std::optional<HttpResponse> first = c.ReadResponse();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 400);  // {} has no prompt
  std::optional<HttpResponse> second = c.ReadResponse();
  ASSERT_TRUE(second) << "the garbage after the body should be answered";
  EXPECT_EQ(second->status, 400);
  ExpectHealthy();
}

TEST_F(HostileHttpTest, DeepJsonIsRefusedAtTheDepthLimitOnEveryRoute) {
  Start();
  struct Route {
    const char* path;
    std::string (*body)(int depth);
  };
  const Route routes[] = {
      {"/v1/completions", [](int d) { return "{\"prompt\": " + Nested(d - 1) + "}"; }},
      {"/v1/chat/completions",
       [](int d) {
         return "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"chat_template_kwargs\": {\"x\": " +
                Nested(d - 2) + "}}";
       }},
      {"/tokenize", [](int d) { return "{\"prompt\": \"hi\", \"x\": " + Nested(d - 1) + "}"; }},
      {"/detokenize", [](int d) { return "{\"tokens\": " + Nested(d - 1) + "}"; }},
  };
  for (const Route& route : routes) {
    // Just below the limit parses (what follows may still refuse the body,
    // but not for its depth); just above is refused while parsing, and so is
    // a body of nothing but brackets, a few tens of KB (which crashed the
    // server when a recursive parser met it).
    std::optional<HttpResponse> below = Post(route.path, route.body(kDepth));
    ASSERT_TRUE(below) << route.path;
    // Only a refusal can name the depth: a 200's sampled story may well
    // contain "deeper" (it once did).
    if (below->status != 200) {
      EXPECT_EQ(MessageOf(*below).find("deeper"), std::string::npos) << route.path << ": " << below->body;
    }
    for (const std::string& body : {route.body(kDepth + 1), std::string(40'000, '[')}) {
      std::optional<HttpResponse> r = Post(route.path, body);
      ASSERT_TRUE(r) << route.path << ": no answer (did the server crash?)";
      ExpectErrorObject(*r, 400);
      EXPECT_NE(MessageOf(*r).find("nests deeper than 128 levels"), std::string::npos) << route.path << ": " << r->body;
    }
  }
  // Deep JSON inside a string field that is parsed again: tool-call arguments.
  const Json deep_call = {{"messages",
                           {{{"role", "user"}, {"content", "hi"}},
                            {{"role", "assistant"},
                             {"content", nullptr},
                             {"tool_calls",
                              {{{"id", "c1"},
                                {"type", "function"},
                                {"function", {{"name", "f"}, {"arguments", std::string(100'000, '[')}}}}}}}}}};
  std::optional<HttpResponse> r = Post("/v1/chat/completions", deep_call.dump());
  ASSERT_TRUE(r);
  ExpectErrorObject(*r, 400);
  EXPECT_NE(MessageOf(*r).find("deeper than 128"), std::string::npos) << r->body;
  ExpectHealthy();
}

TEST_F(HostileHttpTest, KeyAndElementLimitsJustBelowAndAboveTheDefaults) {
  Start();
  auto keys_body = [](int keys) {
    std::string s = R"({"prompt": "Once upon a time", "max_tokens": 1)";
    for (int i = 2; i < keys; ++i) s += ",\"k" + std::to_string(i) + "\":0";
    return s + "}";
  };
  std::optional<HttpResponse> ok = Post("/v1/completions", keys_body(kObjectKeys));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body.substr(0, 300);
  std::optional<HttpResponse> over = Post("/v1/completions", keys_body(kObjectKeys + 1));
  ASSERT_TRUE(over);
  ExpectErrorObject(*over, 400);
  EXPECT_NE(MessageOf(*over).find("--max-json-object-keys"), std::string::npos) << over->body;

  // Token ids: the object, its two members and the list count too.
  auto ids_body = [](int values) {
    std::string s = R"({"max_tokens": 1, "prompt": [)";
    for (int i = 0; i < values - 3; ++i) s += i ? ",1" : "1";
    return s + "]}";
  };
  std::optional<HttpResponse> at = Post("/v1/completions", ids_body(kElements));
  ASSERT_TRUE(at);
  ExpectErrorObject(*at, 400);  // parsed: now too long for the context
  EXPECT_EQ(at->JsonBody()["error"]["code"], "context_length_exceeded") << at->body.substr(0, 300);
  std::optional<HttpResponse> past = Post("/v1/completions", ids_body(kElements + 1));
  ASSERT_TRUE(past);
  ExpectErrorObject(*past, 400);
  EXPECT_NE(MessageOf(*past).find("--max-json-elements"), std::string::npos) << past->body.substr(0, 300);

  // Prompts per request, counted before any is tokenized.
  auto prompts_body = [](int n) {
    Json prompts = Json::array();
    for (int i = 0; i < n; ++i) prompts.push_back("x");
    return Json{{"prompt", prompts}, {"max_tokens", 1}}.dump();
  };
  std::optional<HttpResponse> too_many = Post("/v1/completions", prompts_body(kPrompts + 1));
  ASSERT_TRUE(too_many);
  ExpectErrorObject(*too_many, 400);
  EXPECT_NE(MessageOf(*too_many).find("--max-prompts-per-request"), std::string::npos) << too_many->body;
  ExpectHealthy();
}

TEST_F(HostileHttpTest, MaxTokensNearTwoToThe63IsRefused) {
  Start();
  std::optional<HttpResponse> r =
      Post("/v1/completions", R"({"prompt": "Once upon a time", "max_tokens": 9223372036854775807})");
  ASSERT_TRUE(r);
  ExpectErrorObject(*r, 400);
  EXPECT_EQ(r->JsonBody()["error"]["code"], "context_length_exceeded") << r->body;
  EXPECT_NE(MessageOf(*r).find("maximum context length is 512"), std::string::npos) << r->body;
}

// More prompts than running slots and queue could ever hold: a 400 (retrying
// cannot help), where it was a retryable 429.
TEST_F(HostileHttpTest, ARequestThatCanNeverFitIsRefusedNotThrottled) {
  Start({"--max-num-seqs", "2", "--max-num-queued-requests", "1"});
  std::optional<HttpResponse> r =
      Post("/v1/completions", R"({"prompt": ["a", "b", "c", "d"], "max_tokens": 1})");
  ASSERT_TRUE(r);
  ExpectErrorObject(*r, 400);
  EXPECT_NE(MessageOf(*r).find("--max-num-queued-requests"), std::string::npos) << r->body;
  std::optional<HttpResponse> fits = Post("/v1/completions", R"({"prompt": ["a", "b"], "max_tokens": 1})");
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->status, 200) << fits->body;
}

// Heavy bodies are parsed on the worker pool: /health and small requests are
// answered meanwhile. (Before, two 1 MB many-key bodies held an I/O thread
// long enough that /health took 16.5 s.) The bound below is loose on purpose:
// it tells "answered" from "stalled behind the parse", not a latency target
// (bench/hostile_load.sh measures that).
TEST_F(HostileHttpTest, HeavyBodiesDoNotStallOtherClients) {
  Start();
  // The issue's case: 1 MB of keys (~80,000), quadratic to insert one by one.
  std::string many_keys = R"({"prompt": "x")";
  for (int i = 0; many_keys.size() < (1 << 20); ++i) many_keys += ",\"k" + std::to_string(i) + "\":0";
  many_keys += "}";
  std::string many_objects = R"({"prompt": [)";
  for (int i = 0; i < kElements / 2 - 4; ++i) many_objects += i ? ",{\"a\":0}" : "{\"a\":0}";
  many_objects += "]}";
  std::atomic<bool> stop{false};
  std::atomic<int> heavy_answers{0};
  std::vector<std::thread> attackers;
  for (const std::string* body : {&many_keys, &many_keys, &many_objects}) {
    attackers.emplace_back([&, body] {
      while (!stop.load()) {
        Connection c(server_.port());
        if (c.Request("POST", "/v1/completions", *body)) ++heavy_answers;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  double worst_health_ms = 0, worst_completion_ms = 0;
  for (int i = 0; i < 20; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    {
      Connection c(server_.port());
      std::optional<HttpResponse> h = c.Request("GET", "/health");
      ASSERT_TRUE(h);
      EXPECT_EQ(h->status, 200);
    }
    auto t1 = std::chrono::steady_clock::now();
    std::optional<HttpResponse> small =
        Post("/v1/completions", R"({"prompt": "Once upon a time", "max_tokens": 4, "temperature": 0})");
    auto t2 = std::chrono::steady_clock::now();
    ASSERT_TRUE(small);
    EXPECT_EQ(small->status, 200) << small->body;
    worst_health_ms = std::max(worst_health_ms, std::chrono::duration<double, std::milli>(t1 - t0).count());
    worst_completion_ms = std::max(worst_completion_ms, std::chrono::duration<double, std::milli>(t2 - t1).count());
  }
  stop = true;
  for (std::thread& t : attackers) t.join();
  EXPECT_GT(heavy_answers.load(), 0);
  EXPECT_LT(worst_health_ms, 2000) << "/health waited behind heavy parsing";
  EXPECT_LT(worst_completion_ms, 2000) << "a small completion waited behind heavy parsing";
}

TEST_F(HostileHttpTest, SlowTemplateRendersStopAtTheBudget) {
  // An operator's template that is quadratic in the conversation: client
  // messages make each render slower, and the budget stops it.
  const std::string dir = ::testing::TempDir() + "/kaon_slow_template_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/slow.jinja";
  std::ofstream(path) << "{% set ns = namespace(s='') %}{% for m in messages %}{% set ns.s = ns.s ~ m.content %}"
                         "{% endfor %}{{ ns.s[:10] }}";
  Start({"--chat-template", path, "--max-chat-template-render-ms", "200"});
  Json messages = Json::array();
  for (int i = 0; i < 3000; ++i) messages.push_back({{"role", "user"}, {"content", std::string(2000, 'a')}});
  const std::string body = Json{{"messages", messages}, {"max_tokens", 1}}.dump();
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<HttpResponse> r = Post("/v1/chat/completions", body);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r);
  ExpectErrorObject(*r, 400);
  EXPECT_NE(MessageOf(*r).find("--max-chat-template-render-ms"), std::string::npos) << r->body;
  EXPECT_LT(seconds, 5) << "the render ran far past its budget";
  ExpectHealthy();
  std::filesystem::remove_all(dir);
}

TEST_F(HostileHttpTest, RequestIdsAreUsedOnlyWhenSafeToRepeat) {
  Start();
  struct Case {
    std::string value;
    bool kept;
  };
  const std::vector<Case> cases = {
      {"my-id-1", true},
      {std::string(128, 'a'), true},
      {std::string(129, 'a'), false},
      {"a\x01" "b", false},
      {"a\rkaon: request forged GET /v1/models 200", false},
      {"caf\xc3\xa9", false},
  };
  for (const Case& c : cases) {
    Connection conn(server_.port());
    std::optional<HttpResponse> r = conn.Request("GET", "/v1/models", "", "X-Request-Id: " + c.value + "\r\n");
    if (!r) continue;  // a bare CR may be refused as malformed, which is fine too
    const std::string id = r->Header("x-request-id");
    if (c.kept) {
      EXPECT_EQ(id, c.value);
    } else {
      EXPECT_EQ(id.rfind("req-", 0), 0u) << "a generated id instead of " << c.value;
    }
  }
  ExpectHealthy();
  ASSERT_EQ(server_.Terminate(), 0);
  // Every line the log holds is one the server wrote.
  std::istringstream lines(Log());
  std::string line;
  while (std::getline(lines, line)) {
    EXPECT_EQ(line.find("forged"), std::string::npos) << line;
    EXPECT_EQ(line.find('\r'), std::string::npos) << line;
  }
}

}  // namespace
}  // namespace kaon::testing
