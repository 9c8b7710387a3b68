// Shared by the gRPC tests: the real `kaon serve --grpc-port 0` as a child
// process (both ports read from its announcement lines), generated stubs on
// one channel, and small readers for /metrics and the golden file.
#pragma once

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "health.grpc.pb.h"
#include "kaon/v1/kaon.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/common/test_paths.h"
#include "tests/http/http_test_util.h"

namespace kaon::testing {

// `kaon serve MODEL --port 0 --grpc-port 0 ARGS...` (the HTTP tests'
// ServerProcess, plus the gRPC port from its own announcement line); MODEL is
// models/stories260k unless `model_dir` names another.
class GrpcServerProcess {
 public:
  // True once both "kaon: grpc on HOST:PORT" and "kaon: serving ... on
  // http://HOST:PORT" were printed. The server's stderr goes to /dev/null
  // unless KAON_TEST_VERBOSE is set.
  bool Start(const std::vector<std::string>& extra_args, const std::vector<std::string>& env = {},
             const std::string& model_dir = "") {
    std::vector<std::string> argv = {BinDir() + "/kaon", "serve", model_dir.empty() ? BundledModelDir() : model_dir,
                                     "--port", "0", "--grpc-port", "0"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    const std::string err = std::getenv("KAON_TEST_VERBOSE") == nullptr ? "/dev/null" : "";
    if (!process_.Start(argv, err, env)) return false;
    std::smatch g;
    const std::string& out = process_.output();
    if (!std::regex_search(out, g, std::regex(R"(kaon: grpc on [^\s:]+:(\d+)\n)"))) return false;
    grpc_port_ = std::stoi(g[1]);
    // The gRPC line comes first, so a client can connect before HTTP is announced.
    grpc_first_ = static_cast<size_t>(g.position(0)) < out.find("kaon: serving ");
    return grpc_port_ > 0;
  }

  void Signal(int sig) { process_.Signal(sig); }
  // The exit code (-1: killed by a signal or still running after `seconds`).
  int WaitExit(int seconds) { return process_.WaitExit(seconds); }

  int grpc_port() const { return grpc_port_; }
  int http_port() const { return process_.port(); }
  bool grpc_line_first() const { return grpc_first_; }
  std::string grpc_target() const { return "127.0.0.1:" + std::to_string(grpc_port_); }

  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel(grpc_target(), grpc::InsecureChannelCredentials());
  }

 private:
  ServerProcess process_;
  int grpc_port_ = 0;
  bool grpc_first_ = false;
};

inline void SetDeadline(grpc::ClientContext& ctx, std::chrono::milliseconds ms = std::chrono::seconds(60)) {
  ctx.set_deadline(std::chrono::system_clock::now() + ms);
}

// `name{model_name="stories260k"...} value` from /metrics; NaN if absent.
inline double Metric(int http_port, const std::string& name) {
  Connection c(http_port);
  std::optional<HttpResponse> r = c.Request("GET", "/metrics");
  if (!r || r->status != 200) return std::nan("");
  std::istringstream in(r->body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + "{", 0) != 0 && line.rfind(name + " ", 0) != 0) continue;
    if (line.find('{') != std::string::npos && line.find("model_name=\"stories260k\"") == std::string::npos) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nan("");
}

inline nlohmann::json Golden() {
  std::ifstream in(BundledModelDir() + "/golden.json");
  return nlohmann::json::parse(in);
}

// What one streamed Generate delivered.
struct StreamResult {
  grpc::Status status;
  int messages = 0;
  std::string text;
  std::vector<int32_t> token_ids;
  std::vector<kaon::v1::TokenLogprob> logprobs;
  kaon::v1::FinishReason finish_reason = kaon::v1::FINISH_REASON_UNSPECIFIED;
  kaon::v1::Usage usage;
  std::vector<int32_t> prompt_token_ids;
};

// Reads a whole stream (choice 0). `cancel_after` > 0: ClientContext::TryCancel
// after that many messages.
inline StreamResult Stream(kaon::v1::Generation::Stub& stub, const kaon::v1::GenerateRequest& request,
                           std::chrono::milliseconds deadline = std::chrono::seconds(60), int cancel_after = 0) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, deadline);
  StreamResult out;
  std::unique_ptr<grpc::ClientReader<kaon::v1::GenerateResponse>> reader = stub.Generate(&ctx, request);
  kaon::v1::GenerateResponse m;
  while (reader->Read(&m)) {
    ++out.messages;
    if (out.messages == 1) out.prompt_token_ids.assign(m.prompt_token_ids().begin(), m.prompt_token_ids().end());
    for (const kaon::v1::Choice& c : m.choices()) {
      out.text += c.text();
      out.token_ids.insert(out.token_ids.end(), c.token_ids().begin(), c.token_ids().end());
      out.logprobs.insert(out.logprobs.end(), c.logprobs().begin(), c.logprobs().end());
      if (c.finish_reason() != kaon::v1::FINISH_REASON_UNSPECIFIED) out.finish_reason = c.finish_reason();
    }
    if (m.has_usage()) out.usage = m.usage();
    if (cancel_after > 0 && out.messages == cancel_after) ctx.TryCancel();
  }
  out.status = reader->Finish();
  return out;
}

// The chat template the gRPC suites serve with (the bundled model has none).
inline std::string Llama2ChatTemplate() { return SourceDir() + "/tests/data/templates/llama2_chat.jinja"; }

// One `kaon serve --grpc-port 0 --chat-template llama2_chat.jinja` for a whole
// test suite (starting it costs more than most tests), and a stub per test.
class GrpcServerSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new GrpcServerProcess();
    ASSERT_TRUE(server_->Start({"--chat-template", Llama2ChatTemplate()}))
        << "kaon serve did not announce both ports";
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = kaon::v1::Generation::NewStub(server_->Channel());
  }

  static inline GrpcServerProcess* server_ = nullptr;
  std::unique_ptr<kaon::v1::Generation::Stub> stub_;
};

}  // namespace kaon::testing
