// The operational side of the real `kaon serve`: /metrics, /tokenize,
// /version, API keys, CORS, body limits, the request log, client
// disconnects and draining on SIGTERM. Tests that need a request to stay in
// flight use a small random-weight model that decodes slowly enough on a CPU.
#include <cstdlib>
#include <filesystem>
#include <regex>

#include "tests/common/prometheus_text.h"
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

double Metric(const std::string& text, const std::string& series) {
  return kaon::testing::PrometheusSample(text, series);
}

constexpr const char* kLabels = "{model_name=\"stories260k\"}";

std::string Series(const std::string& name) { return "kaon:" + name + kLabels; }

std::string Metrics(int port) {
  Connection c(port);
  auto r = c.Request("GET", "/metrics");
  EXPECT_TRUE(r && r->status == 200);
  return r ? r->body : "";
}

Json Completion(const std::string& prompt, int max_tokens, bool stream) {
  return Json{{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", true},
              {"stream", stream}};
}

std::vector<std::string> ServeArgs(const std::string& model, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {kaon::testing::BinDir() + "/kaon", "serve", model, "--port", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Polls /metrics until `series` reaches `value` (or 10 s pass); returns the last value.
double WaitForMetric(int port, const std::string& series, double value) {
  double v = -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    v = Metric(Metrics(port), series);
    if (v == value) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return v;
}

TEST(HttpOperationsTest, MetricsCountWhatTheApiReturned) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(ServeArgs(BundledModel())));
  const std::string before = Metrics(server.port());
  EXPECT_NE(before.find("# TYPE kaon:num_requests_running gauge"), std::string::npos);
  EXPECT_NE(before.find("# TYPE kaon:generation_tokens_total counter"), std::string::npos);
  EXPECT_NE(before.find("# TYPE kaon:time_to_first_token_seconds histogram"), std::string::npos);
  EXPECT_EQ(Metric(before, Series("generation_tokens_total")), 0);
  EXPECT_EQ(Metric(before, Series("num_requests_running")), 0);
  EXPECT_NE(before.find("kaon:cache_config_info{model_name=\"stories260k\",block_size=\"16\""), std::string::npos);

  Connection c(server.port());
  auto r = c.Request("POST", "/v1/completions", Completion("Once upon a time", 7, false).dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto s = c.Request("POST", "/v1/completions", Completion("Once upon a time", 5, true).dump());
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200);
  const Json usage = r->JsonBody()["usage"];

  const std::string after = Metrics(server.port());
  EXPECT_EQ(Metric(after, Series("generation_tokens_total")), 12);
  EXPECT_EQ(Metric(after, Series("prompt_tokens_total")), 2 * usage["prompt_tokens"].get<double>());
  EXPECT_EQ(Metric(after, "kaon:request_success_total{model_name=\"stories260k\",finished_reason=\"length\"}"), 2);
  EXPECT_EQ(Metric(after, Series("time_to_first_token_seconds_count")), 2);
  EXPECT_EQ(Metric(after, Series("e2e_request_latency_seconds_count")), 2);
  EXPECT_EQ(Metric(after, Series("request_generation_tokens_sum")), 12);
  EXPECT_EQ(Metric(after, "kaon:e2e_request_latency_seconds_bucket{model_name=\"stories260k\",le=\"+Inf\"}"), 2);
  EXPECT_EQ(Metric(after, Series("num_requests_running")), 0);
  EXPECT_EQ(Metric(after, Series("kv_cache_usage_perc")), 0);
  EXPECT_EQ(server.Terminate(), 0);
}

TEST(HttpOperationsTest, TokenizeDetokenizeAndVersion) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(ServeArgs(BundledModel())));
  const Json golden = GoldenCase0();
  Connection c(server.port());
  auto t = c.Request("POST", "/tokenize", Json{{"prompt", golden["prompt"]}}.dump());
  ASSERT_TRUE(t);
  ASSERT_EQ(t->status, 200) << t->body;
  EXPECT_EQ(t->JsonBody()["tokens"], golden["prompt_token_ids"]);
  EXPECT_EQ(t->JsonBody()["count"], golden["prompt_token_ids"].size());
  EXPECT_EQ(t->JsonBody()["max_model_len"], 512);
  auto d = c.Request("POST", "/detokenize", Json{{"tokens", golden["greedy_token_ids"]}}.dump());
  ASSERT_TRUE(d);
  ASSERT_EQ(d->status, 200) << d->body;
  EXPECT_NE(d->JsonBody()["prompt"].get<std::string>().find(golden["greedy_text"].get<std::string>().substr(0, 20)),
            std::string::npos)
      << d->body;

  auto bad = c.Request("POST", "/detokenize", Json{{"tokens", {1, 100000}}}.dump());
  ASSERT_TRUE(bad);
  ExpectErrorObject(*bad, 400);
  EXPECT_EQ(bad->JsonBody()["error"]["param"], "tokens");
  auto get = c.Request("GET", "/tokenize");
  ASSERT_TRUE(get);
  ExpectErrorObject(*get, 405);
  auto no_template = c.Request("POST", "/tokenize", R"({"messages": [{"role": "user", "content": "hi"}]})");
  ASSERT_TRUE(no_template);
  ExpectErrorObject(*no_template, 400);

  auto v = c.Request("GET", "/version");
  ASSERT_TRUE(v);
  ASSERT_EQ(v->status, 200);
  EXPECT_TRUE(std::regex_match(v->JsonBody()["version"].get<std::string>(), std::regex(R"(\d+\.\d+\.\d+)")))
      << v->body;
  EXPECT_EQ(server.Terminate(), 0);
}

TEST(HttpOperationsTest, ApiKeyGuardsTheApiButNotTheProbes) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(ServeArgs(BundledModel(), {"--api-key", "k-3f9a"})));
  Connection c(server.port());
  for (const char* path : {"/v1/models", "/v1/models/stories260k"}) {
    auto r = c.Request("GET", path);
    ASSERT_TRUE(r);
    ExpectErrorObject(*r, 401);
    EXPECT_EQ(r->JsonBody()["error"]["code"], "invalid_api_key");
    EXPECT_EQ(r->Header("www-authenticate"), "Bearer");
  }
  auto wrong = c.Request("POST", "/v1/completions", Completion("x", 2, false).dump(), "Authorization: Bearer k-3f9b\r\n");
  ASSERT_TRUE(wrong);
  ExpectErrorObject(*wrong, 401);
  auto tok = c.Request("POST", "/tokenize", R"({"prompt": "x"})");
  ASSERT_TRUE(tok);
  ExpectErrorObject(*tok, 401);
  auto right = c.Request("POST", "/v1/completions", Completion("x", 2, false).dump(), "Authorization: Bearer k-3f9a\r\n");
  ASSERT_TRUE(right);
  EXPECT_EQ(right->status, 200) << right->body;
  for (const char* open : {"/health", "/metrics", "/version"}) {
    auto r = c.Request("GET", open);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << open;
  }
  EXPECT_EQ(server.Terminate(), 0);

  // The same from the environment.
  ServerProcess env_server;
  ASSERT_TRUE(env_server.Start(ServeArgs(BundledModel()), "", {"KAON_API_KEY=from-env"}));
  Connection e(env_server.port());
  auto none = e.Request("GET", "/v1/models");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  auto with = e.Request("GET", "/v1/models", "", "Authorization: Bearer from-env\r\n");
  ASSERT_TRUE(with);
  EXPECT_EQ(with->status, 200);
  EXPECT_EQ(env_server.Terminate(), 0);
}

TEST(HttpOperationsTest, CorsAnswersAllowedOriginsOnly) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(ServeArgs(BundledModel(), {"--allowed-origins", R"(["https://app.example"])",
                                                      "--api-key", "k"})));
  Connection c(server.port());
  // Preflight needs no key: browsers send none with it.
  auto pre = c.Request("OPTIONS", "/v1/chat/completions", "",
                       "Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n"
                       "Access-Control-Request-Headers: authorization, content-type\r\n");
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre->status, 204);
  EXPECT_EQ(pre->Header("access-control-allow-origin"), "https://app.example");
  EXPECT_NE(pre->Header("access-control-allow-methods").find("POST"), std::string::npos);
  EXPECT_EQ(pre->Header("access-control-allow-headers"), "authorization, content-type");

  auto other = c.Request("OPTIONS", "/v1/models", "", "Origin: https://evil.example\r\n");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->Header("access-control-allow-origin"), "");

  auto get = c.Request("GET", "/v1/models", "", "Origin: https://app.example\r\nAuthorization: Bearer k\r\n");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->Header("access-control-allow-origin"), "https://app.example");
  EXPECT_EQ(server.Terminate(), 0);

  // Without --allowed-origins there is no CORS at all.
  ServerProcess plain;
  ASSERT_TRUE(plain.Start(ServeArgs(BundledModel())));
  Connection p(plain.port());
  auto none = p.Request("OPTIONS", "/v1/models", "", "Origin: https://app.example\r\n");
  ASSERT_TRUE(none);
  ExpectErrorObject(*none, 405);
  EXPECT_EQ(none->Header("access-control-allow-origin"), "");
  EXPECT_EQ(plain.Terminate(), 0);
}

TEST(HttpOperationsTest, MaxRequestBytesAndTheRequestLog) {
  const std::string log_path = std::filesystem::temp_directory_path() / ("kaon_log_" + std::to_string(::getpid()));
  ServerProcess server;
  ASSERT_TRUE(server.Start(ServeArgs(BundledModel(), {"--max-request-bytes", "400"}), log_path));
  Connection c(server.port());
  Json big = Completion(std::string(500, 'a'), 2, false);
  auto r = c.Request("POST", "/v1/completions", big.dump());
  ASSERT_TRUE(r);
  ExpectErrorObject(*r, 413);
  EXPECT_NE(r->JsonBody()["error"]["message"].get<std::string>().find("400"), std::string::npos);

  Connection c2(server.port());
  auto ok = c2.Request("POST", "/v1/completions", Completion("Once upon a time", 3, false).dump(),
                       "X-Request-Id: trace-77\r\n");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(ok->Header("x-request-id"), "trace-77");
  EXPECT_EQ(server.Terminate(), 0);

  std::ifstream in(log_path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string log = text.str();
  std::filesystem::remove(log_path);
  const std::regex line(R"(kaon: request trace-77 POST /v1/completions 200 prompt_tokens=\d+ output_tokens=3 )"
                        R"(ttft_ms=[0-9.]+ total_ms=[0-9.]+)");
  EXPECT_TRUE(std::regex_search(log, line)) << log;
  EXPECT_NE(log.find("POST /v1/completions 413"), std::string::npos) << log;
}

TEST(HttpOperationsTest, IdleConnectionsCloseAfterTheKeepAliveTimeout) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(ServeArgs(BundledModel(), {"--timeout-keep-alive", "1"})));
  Connection c(server.port());
  ASSERT_TRUE(c.Request("GET", "/health"));
  const auto start = std::chrono::steady_clock::now();
  // The server closes the idle connection: the next read sees end of stream.
  EXPECT_FALSE(c.ReadResponse().has_value());
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GT(waited, std::chrono::milliseconds(800));
  EXPECT_LT(waited, std::chrono::seconds(5));
  // A client that sends half its headers and stalls is told so (408), then
  // dropped the same way.
  Connection slow(server.port());
  ASSERT_TRUE(slow.SendRaw("GET /health HTTP/1.1\r\nHost: x\r\n"));
  std::optional<HttpResponse> timed_out = slow.ReadResponse();
  ASSERT_TRUE(timed_out.has_value());
  EXPECT_EQ(timed_out->status, 408);
  EXPECT_FALSE(slow.ReadResponse().has_value());
  EXPECT_EQ(server.Terminate(), 0);
}

TEST(HttpOperationsTest, BadServeFlagsExitWithAMessage) {
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--allowed-origins", "not-an-origin"}, "--allowed-origins"},
      {{"--api-key", ""}, "--api-key"},
      {{"--timeout-keep-alive", "0"}, "--timeout-keep-alive"},
      {{"--shutdown-timeout", "-1"}, "--shutdown-timeout"},
  };
  for (const Case& c : cases) {
    const std::string err_path = std::filesystem::temp_directory_path() / ("kaon_err_" + std::to_string(::getpid()));
    ServerProcess server;
    EXPECT_FALSE(server.Start(ServeArgs(BundledModel(), c.flags), err_path));
    std::ifstream in(err_path);
    std::stringstream text;
    text << in.rdbuf();
    std::filesystem::remove(err_path);
    EXPECT_NE(text.str().find(c.message), std::string::npos) << text.str();
  }
}

// A random-weight model big enough that a request stays in flight for a
// second or two on a CPU.
class SlowModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(std::filesystem::temp_directory_path() / ("kaon_slow_" + std::to_string(::getpid())));
    std::filesystem::create_directories(*dir_);
    const Json config = {{"architectures", {"LlamaForCausalLM"}},
                         {"model_type", "llama"},
                         {"hidden_size", 512},
                         {"intermediate_size", 1408},
                         {"num_hidden_layers", 6},
                         {"num_attention_heads", 8},
                         {"num_key_value_heads", 4},
                         {"head_dim", 64},
                         {"vocab_size", 512},
                         {"max_position_embeddings", 1024},
                         {"rms_norm_eps", 1e-5},
                         {"rope_theta", 10000.0},
                         {"hidden_act", "silu"},
                         {"tie_word_embeddings", true},
                         {"bos_token_id", 1},
                         {"eos_token_id", 2},
                         {"torch_dtype", "float32"}};
    std::ofstream(*dir_ + "/config.in.json") << config.dump();
    const std::string cmd = kaon::testing::BinDir() + "/kaon random-model --config " + *dir_ +
                            "/config.in.json --out " + *dir_ + "/model --tokenizer-from " + BundledModel() +
                            " > /dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string Model() { return *dir_ + "/model"; }
  static inline std::string* dir_ = nullptr;
};

std::string RawPost(const std::string& body) {
  return "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST_F(SlowModelTest, DisconnectedNonStreamingClientAbortsItsRequest) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(ServeArgs(Model(), {"--served-model-name", "stories260k"})));
  const double baseline_kv = Metric(Metrics(server.port()), Series("kv_cache_usage_perc"));
  {
    Connection c(server.port());
    ASSERT_TRUE(c.SendRaw(RawPost(Completion("Once upon a time", 800, false).dump())));
    ASSERT_EQ(WaitForMetric(server.port(), Series("num_requests_running"), 1), 1);
  }  // closed while the server is still generating
  EXPECT_EQ(WaitForMetric(server.port(), "kaon:request_success_total{model_name=\"stories260k\",finished_reason=\"abort\"}",
                          1),
            1);
  // The engine frees the request's blocks on its next loop.
  EXPECT_EQ(WaitForMetric(server.port(), Series("num_requests_running"), 0), 0);
  EXPECT_EQ(WaitForMetric(server.port(), Series("kv_cache_usage_perc"), baseline_kv), baseline_kv);
  EXPECT_LT(Metric(Metrics(server.port()), Series("generation_tokens_total")), 800);
  EXPECT_EQ(server.Terminate(), 0);
}

TEST_F(SlowModelTest, SigtermDrainsInFlightStreamsThenExitsZero) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(ServeArgs(Model(), {"--served-model-name", "stories260k", "--shutdown-timeout", "60"})));
  Connection stream(server.port());
  Connection idle(server.port());
  ASSERT_TRUE(idle.Request("GET", "/health"));  // a keep-alive connection opened before the signal
  ASSERT_TRUE(stream.SendRaw(RawPost(Completion("Once upon a time", 300, true).dump())));
  ASSERT_EQ(WaitForMetric(server.port(), Series("num_requests_running"), 1), 1);

  server.Signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // Draining: the health check says so, new work is refused, new connections too.
  auto health = idle.Request("GET", "/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_EQ(health->JsonBody()["status"], "draining");
  Connection late(server.port());
  EXPECT_FALSE(late.ok() && late.Request("GET", "/health").has_value());

  // The in-flight stream still completes, every token of it.
  auto r = stream.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  int chunks_with_text = 0;
  size_t at = 0;
  while ((at = r->body.find("\"text\":\"", at)) != std::string::npos) {
    ++chunks_with_text;
    ++at;
  }
  EXPECT_GT(chunks_with_text, 0);
  EXPECT_NE(r->body.find("\"finish_reason\":\"length\""), std::string::npos);
  EXPECT_NE(r->body.find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(server.WaitExit(30), 0);
}

TEST_F(SlowModelTest, ShutdownTimeoutCutsLongRequestsShort) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(ServeArgs(Model(), {"--served-model-name", "stories260k", "--shutdown-timeout", "0"})));
  Connection stream(server.port());
  ASSERT_TRUE(stream.SendRaw(RawPost(Completion("Once upon a time", 900, true).dump())));
  ASSERT_EQ(WaitForMetric(server.port(), Series("num_requests_running"), 1), 1);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server.Terminate(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

}  // namespace
}  // namespace kaon
