// DESIGN.md's failure classes over gRPC, through the real serve command
// in-process with a model that fails or hangs on demand: a failed step ends
// only its own call with INTERNAL and the server keeps serving; a step past
// the watchdog limit ends every in-flight call with INTERNAL, turns health
// NOT_SERVING, refuses new calls and makes `kaon serve` return 1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <sstream>

#include "models/registry.h"
#include "server/cli/serve_command.h"
#include "server/runtime/causal_lm.h"
#include "tests/grpc/grpc_test_util.h"

namespace kaon {
namespace {

using kaon::v1::GenerateRequest;
using kaon::v1::GenerateResponse;
using testing::Golden;
using testing::SetDeadline;

// Never freed: after a watchdog trip the engine (and the model) is leaked.
struct Faults {
  std::atomic<bool> fail_next{false};
  std::mutex mu;
  std::condition_variable cv;
  bool hang = false;
  bool block_load = false;
  std::atomic<bool> hanging{false};
  void Release() {
    std::lock_guard<std::mutex> lock(mu);
    hang = false;
    block_load = false;
    cv.notify_all();
  }
};

class FaultyModel : public CausalLM {
 public:
  FaultyModel(std::unique_ptr<CausalLM> inner, Faults* faults) : inner_(std::move(inner)), faults_(faults) {}
  const ModelConfig& config() const override { return inner_->config(); }
  std::unique_ptr<KvCache> CreateKvCache(const kernels::PagedKvShape& shape) const override {
    return inner_->CreateKvCache(shape);
  }
  absl::Status Forward(const ForwardBatch& batch, KvCache& cache, float* logits) override {
    if (faults_->fail_next.exchange(false)) return absl::InternalError("injected fault");
    {
      std::unique_lock<std::mutex> lock(faults_->mu);
      if (faults_->hang) {
        faults_->hanging = true;
        faults_->cv.wait(lock, [this] { return !faults_->hang; });
      }
    }
    return inner_->Forward(batch, cache, logits);
  }

 private:
  std::unique_ptr<CausalLM> inner_;
  Faults* faults_;
};

// A port that was free a moment ago (the serve command binds it next).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// RunServeCommand on a thread, with --grpc-port.
class InProcessServer {
 public:
  InProcessServer(Faults* faults, double step_timeout_s) {
    flags_.model_dir = testing::BundledModelDir();
    flags_.port = 0;
    flags_.grpc_port = FreePort();
    flags_.engine_step_timeout_s = step_timeout_s;
    flags_.shutdown_timeout_s = 5;
    flags_.log_requests = false;
    flags_.engine.options.model_loader = [faults](const std::string& dir, const ModelInfo& info,
                                                  const ModelCapacity& capacity)
        -> absl::StatusOr<std::unique_ptr<CausalLM>> {
      {
        std::unique_lock<std::mutex> lock(faults->mu);
        faults->cv.wait(lock, [faults] { return !faults->block_load; });
      }
      absl::StatusOr<std::unique_ptr<CausalLM>> m = LoadModel(dir, info, capacity);
      if (!m.ok()) return m.status();
      return std::unique_ptr<CausalLM>(new FaultyModel(std::move(*m), faults));
    };
    std::future<int> ready = ready_.get_future();
    thread_ = std::thread([this] {
      ServeHooks hooks;
      hooks.on_ready = [this](int p) {
        announced_ = true;
        ready_.set_value(p);
      };
      exit_code_ = RunServeCommand(flags_, out_, err_, hooks);
      if (!announced_) ready_.set_value(-1);
    });
    if (!faults->block_load && ready.wait_for(std::chrono::seconds(20)) == std::future_status::ready) {
      http_port_ = ready.get();
    }
    ready_future_ = std::move(ready);
  }
  // After the load was unblocked: waits for readiness.
  bool WaitReady() {
    if (ready_future_.valid() && ready_future_.wait_for(std::chrono::seconds(20)) == std::future_status::ready) {
      http_port_ = ready_future_.get();
    }
    return ok();
  }
  ~InProcessServer() {
    if (thread_.joinable()) {
      ::kill(::getpid(), SIGTERM);
      thread_.join();
    }
  }
  bool ok() const { return http_port_ > 0; }
  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(*flags_.grpc_port), grpc::InsecureChannelCredentials());
  }
  int Join(int seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (exit_code_ < 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (exit_code_ < 0) return -1;
    thread_.join();
    return exit_code_;
  }
  int Stop() {
    ::kill(::getpid(), SIGTERM);
    return Join(20);
  }
  std::string err() const { return err_.str(); }

 private:
  ServeFlags flags_;
  std::ostringstream out_;
  std::ostringstream err_;
  std::atomic<int> exit_code_{-1};
  std::promise<int> ready_;
  std::future<int> ready_future_;
  std::atomic<bool> announced_{false};
  int http_port_ = 0;
  std::thread thread_;
};

GenerateRequest GoldenRequest() {
  const nlohmann::json c = Golden()["cases"][0];
  GenerateRequest r;
  r.set_text(c["prompt"].get<std::string>());
  r.set_temperature(0);
  r.set_max_tokens(c["max_tokens"].get<int64_t>());
  r.set_ignore_eos(true);
  return r;
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(InProcessServer& server) {
  auto health = grpc::health::v1::Health::NewStub(server.Channel());
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
  InProcessServer server(faults, 300);
  auto stub = kaon::v1::Generation::NewStub(server.Channel());
  // The gRPC port is bound before the model loads.
  EXPECT_EQ(Health(server), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::seconds(10));
  GenerateResponse r;
  grpc::Status s = stub->Complete(&ctx, GoldenRequest(), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(s.error_message().find("loading"), std::string::npos) << s.error_message();

  faults->Release();
  ASSERT_TRUE(server.WaitReady()) << server.err();
  EXPECT_EQ(Health(server), grpc::health::v1::HealthCheckResponse::SERVING);
  testing::StreamResult ok = testing::Stream(*stub, GoldenRequest());
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.text, Golden()["cases"][0]["greedy_text"].get<std::string>());
  EXPECT_EQ(server.Stop(), 0);
}

TEST(GrpcFaultTest, AFailedStepFailsOnlyItsCall) {
  static Faults* faults = new Faults();
  InProcessServer server(faults, 300);
  ASSERT_TRUE(server.ok()) << server.err();
  auto stub = kaon::v1::Generation::NewStub(server.Channel());

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
  InProcessServer server(faults, 0.5);
  ASSERT_TRUE(server.ok()) << server.err();
  auto stub = kaon::v1::Generation::NewStub(server.Channel());
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
  testing::StreamResult s = streamed.get();
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INTERNAL) << s.status.error_message();

  EXPECT_EQ(server.Join(20), 1);
  EXPECT_NE(server.err().find("fatal"), std::string::npos) << server.err();
  faults->Release();
}

}  // namespace
}  // namespace kaon
