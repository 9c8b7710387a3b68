// DESIGN.md's failure classes, through the real serve command in-process
// with a model that fails or hangs on demand: a failed step answers only
// its own requests with a 500 and the server keeps serving; a fatal step
// error (a sticky CUDA error) or a step past the watchdog limit turns
// /health to 503, fails every request and makes `kaon serve` return 1.
#include "tests/common/in_process_server.h"
#include "tests/http/http_test_util.h"

namespace kaon {
namespace {

using Json = nlohmann::json;
using testing::Connection;
using testing::ExpectErrorObject;
using testing::Faults;
using testing::GoldenCase0;
using testing::InProcessServer;

Json GreedyBody(bool stream, int max_tokens = 128) {
  const Json golden = GoldenCase0();
  return Json{{"prompt", golden["prompt"]}, {"max_tokens", max_tokens}, {"temperature", 0},
              {"ignore_eos", true},         {"stream", stream}};
}

TEST(ServeFaultTest, WhileLoadingEverythingButProbesIs503) {
  static Faults* faults = new Faults();
  faults->block_load = true;
  InProcessServer server(faults, 300);
  ASSERT_GT(server.listening_port(), 0) << server.err();
  Connection c(server.listening_port());
  auto health = c.Request("GET", "/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_EQ(health->JsonBody()["status"], "loading");
  for (const char* path : {"/v1/completions", "/tokenize"}) {
    auto r = c.Request("POST", path, R"({"prompt": "x"})");
    ASSERT_TRUE(r);
    ExpectErrorObject(*r, 503);
    EXPECT_NE(r->body.find("loading"), std::string::npos) << r->body;
  }
  auto metrics = c.Request("GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 503);

  faults->Release();
  ASSERT_EQ(server.WaitReady(), server.listening_port());
  auto ready = c.Request("GET", "/health");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  auto ok = c.Request("POST", "/v1/completions", GreedyBody(false).dump());
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->JsonBody()["choices"][0]["text"], GoldenCase0()["greedy_text"]);
  EXPECT_EQ(server.Stop(), 0);
}

TEST(ServeFaultTest, AFailedStepFailsOnlyItsRequests) {
  static Faults* faults = new Faults();
  InProcessServer server(faults, 300);
  ASSERT_GT(server.port(), 0) << server.err();
  Connection c(server.port());

  faults->fail_next = true;
  auto failed = c.Request("POST", "/v1/completions", GreedyBody(false).dump());
  ASSERT_TRUE(failed);
  ExpectErrorObject(*failed, 500);
  EXPECT_EQ(failed->JsonBody()["error"]["type"], "server_error");
  EXPECT_NE(failed->body.find("injected fault"), std::string::npos) << failed->body;

  faults->fail_next = true;
  auto failed_stream = c.Request("POST", "/v1/completions", GreedyBody(true).dump());
  ASSERT_TRUE(failed_stream);
  EXPECT_EQ(failed_stream->status, 200);  // the headers were already sent
  EXPECT_NE(failed_stream->body.find("injected fault"), std::string::npos) << failed_stream->body;
  EXPECT_NE(failed_stream->body.find("data: [DONE]"), std::string::npos);

  // The server keeps serving, correctly.
  auto ok = c.Request("POST", "/v1/completions", GreedyBody(false).dump());
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(ok->JsonBody()["choices"][0]["text"], GoldenCase0()["greedy_text"]);
  auto health = c.Request("GET", "/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto metrics = c.Request("GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("kaon:request_success_total{model_name=\"stories260k\",finished_reason=\"error\"} 2"),
            std::string::npos)
      << metrics->body;
  EXPECT_EQ(server.Stop(), 0);
}

TEST(ServeFaultTest, AHungStepIsFatal) {
  static Faults* faults = new Faults();
  InProcessServer server(faults, 0.5);
  ASSERT_GT(server.port(), 0) << server.err();
  {
    std::lock_guard<std::mutex> lock(faults->mu);
    faults->hang = true;
  }
  // Two clients wait on the hung engine: one streaming, one not.
  Connection streaming(server.port());
  Connection plain(server.port());
  const std::string s_body = GreedyBody(true).dump();
  ASSERT_TRUE(streaming.SendRaw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                std::to_string(s_body.size()) + "\r\n\r\n" + s_body));
  auto failed = plain.Request("POST", "/v1/completions", GreedyBody(false).dump());
  ASSERT_TRUE(failed);
  ExpectErrorObject(*failed, 500);
  EXPECT_NE(failed->body.find("engine failed"), std::string::npos) << failed->body;
  EXPECT_NE(failed->body.find("--engine-step-timeout"), std::string::npos) << failed->body;
  EXPECT_TRUE(faults->hanging.load());

  auto health = Connection(server.port()).Request("GET", "/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_EQ(health->JsonBody()["status"], "error");

  auto stream = streaming.ReadResponse();
  ASSERT_TRUE(stream);
  EXPECT_NE(stream->body.find("engine failed"), std::string::npos) << stream->body;
  EXPECT_NE(stream->body.find("data: [DONE]"), std::string::npos);

  EXPECT_EQ(server.Join(20), 1);
  EXPECT_NE(server.err().find("fatal"), std::string::npos) << server.err();
  // The step stays hung: the leaked engine's thread waits on `faults` (never
  // freed) until the process exits. Released, it would run the model while
  // exit() unloads the BLAS library under it (a segfault after the test passed).
}

TEST(ServeFaultTest, AFatalStepErrorIsFatal) {
  static Faults* faults = new Faults();
  InProcessServer server(faults, 300);
  ASSERT_GT(server.port(), 0) << server.err();
  Connection c(server.port());
  faults->fatal_next = true;
  auto failed = c.Request("POST", "/v1/completions", GreedyBody(false).dump());
  ASSERT_TRUE(failed);
  ExpectErrorObject(*failed, 500);
  EXPECT_NE(failed->body.find("injected sticky error"), std::string::npos) << failed->body;

  auto health = Connection(server.port()).Request("GET", "/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_NE(health->body.find("injected sticky error"), std::string::npos) << health->body;
  // New work is refused, not queued on a dead engine.
  auto refused = Connection(server.port()).Request("POST", "/v1/completions", GreedyBody(false).dump());
  ASSERT_TRUE(refused);
  EXPECT_GE(refused->status, 500) << refused->body;

  EXPECT_EQ(server.Join(20), 1);
  EXPECT_NE(server.err().find("fatal"), std::string::npos) << server.err();
}

}  // namespace
}  // namespace kaon
