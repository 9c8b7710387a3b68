// DESIGN.md's failure classes over gRPC, through the real serve command
// in-process with a model that fails or hangs on demand: a failed step ends
// only its own call with INTERNAL and the server keeps serving; a step past
// the watchdog limit ends every in-flight call with INTERNAL, turns health
// NOT_SERVING, refuses new calls and makes `kaon serve` return 1.
#include "tests/common/in_process_server.h"
#include "tests/grpc/grpc_test_util.h"

namespace kaon {
namespace {

using kaon::v1::GenerateRequest;
using kaon::v1::GenerateResponse;
using testing::Golden;
using testing::SetDeadline;

using testing::Faults;
using testing::InProcessServer;

// The serve command with a gRPC port (flags need a number: no 0 here).
void WithGrpc(ServeFlags& f) {
  f.grpc_port = testing::FreePort();
  f.log_requests = false;
}

std::shared_ptr<grpc::Channel> Channel(const InProcessServer& server) {
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(*server.flags().grpc_port),
                             grpc::InsecureChannelCredentials());
}

GenerateRequest GoldenRequest() {
  const nlohmann::json c = Golden()["cases"][0];
  GenerateRequest r;
  r.set_text(c["prompt"].get<std::string>());
  r.set_temperature(0);
  r.set_max_tokens(c["max_tokens"].get<int64_t>());
  r.set_ignore_eos(true);
  return r;
}

// HTTP's /health status field ("loading", "ok", "error", ...).
std::string HttpHealth(int port) {
  std::optional<testing::HttpResponse> r = testing::Connection(port).Request("GET", "/health");
  if (!r) return "no answer";
  const nlohmann::json j = r->JsonBody();
  return j.is_object() ? j.value("status", "no status") : "not JSON: " + r->body;
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(InProcessServer& server) {
  auto health = grpc::health::v1::Health::NewStub(Channel(server));
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::seconds(10));
  ctx.set_wait_for_ready(true);  // the server may still be binding
  grpc::health::v1::HealthCheckRequest req;
  req.set_service("kaon.v1.Generation");
  grpc::health::v1::HealthCheckResponse res;
  if (!health->Check(&ctx, req, &res).ok()) return grpc::health::v1::HealthCheckResponse::UNKNOWN;
  return res.status();
}

TEST(GrpcFaultTest, WhileLoadingHealthIsNotServingAndCallsAreUnavailable) {
  static Faults* faults = new Faults();
  faults->block_load = true;
  InProcessServer server(faults, 300, WithGrpc);
  auto stub = kaon::v1::Generation::NewStub(Channel(server));
  // The gRPC port is bound before the model loads; both front ends read
  // one serving state.
  EXPECT_EQ(Health(server), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(HttpHealth(server.listening_port()), "loading");
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::seconds(10));
  GenerateResponse r;
  grpc::Status s = stub->Complete(&ctx, GoldenRequest(), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(s.error_message().find("loading"), std::string::npos) << s.error_message();

  faults->Release();
  ASSERT_GT(server.WaitReady(), 0) << server.err();
  EXPECT_EQ(Health(server), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(HttpHealth(server.port()), "ok");
  testing::StreamResult ok = testing::Stream(*stub, GoldenRequest());
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.text, Golden()["cases"][0]["greedy_text"].get<std::string>());
  EXPECT_EQ(server.Stop(), 0);
}

TEST(GrpcFaultTest, AFailedStepFailsOnlyItsCall) {
  static Faults* faults = new Faults();
  InProcessServer server(faults, 300, WithGrpc);
  ASSERT_GT(server.port(), 0) << server.err();
  auto stub = kaon::v1::Generation::NewStub(Channel(server));

  faults->fail_next = true;
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    GenerateResponse r;
    grpc::Status s = stub->Complete(&ctx, GoldenRequest(), &r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
    EXPECT_NE(s.error_message().find("injected fault"), std::string::npos) << s.error_message();
  }
  faults->fail_next = true;
  testing::StreamResult failed = testing::Stream(*stub, GoldenRequest());
  EXPECT_EQ(failed.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(failed.status.error_message().find("injected fault"), std::string::npos);

  // The server keeps serving, correctly.
  testing::StreamResult ok = testing::Stream(*stub, GoldenRequest());
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.text, Golden()["cases"][0]["greedy_text"].get<std::string>());
  EXPECT_EQ(Health(server), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(server.Stop(), 0);
}

TEST(GrpcFaultTest, AHungStepEndsEveryCallWithInternal) {
  static Faults* faults = new Faults();
  InProcessServer server(faults, 0.5, WithGrpc);
  ASSERT_GT(server.port(), 0) << server.err();
  auto stub = kaon::v1::Generation::NewStub(Channel(server));
  {
    std::lock_guard<std::mutex> lock(faults->mu);
    faults->hang = true;
  }
  std::future<testing::StreamResult> streamed =
      std::async(std::launch::async, [&] { return testing::Stream(*stub, GoldenRequest()); });
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  GenerateResponse r;
  grpc::Status unary = stub->Complete(&ctx, GoldenRequest(), &r);
  EXPECT_EQ(unary.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(unary.error_message().find("engine failed"), std::string::npos) << unary.error_message();
  EXPECT_NE(unary.error_message().find("--engine-step-timeout"), std::string::npos) << unary.error_message();
  EXPECT_TRUE(faults->hanging.load());
  // The watchdog failed the one shared state: HTTP says so too (for the
  // second it lingers before stopping).
  EXPECT_EQ(HttpHealth(server.port()), "error");
  testing::StreamResult s = streamed.get();
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INTERNAL) << s.status.error_message();

  EXPECT_EQ(server.Join(20), 1);
  EXPECT_NE(server.err().find("fatal"), std::string::npos) << server.err();
  // The step stays hung: the leaked engine's thread waits on `faults` (never
  // freed) until the process exits. Released, it would run the model while
  // exit() unloads the BLAS library under it (a segfault after the test passed).
}

}  // namespace
}  // namespace kaon
