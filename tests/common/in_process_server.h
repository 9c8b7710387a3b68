// The real serve command (RunServeCommand) on a thread in the test process,
// with a model that fails, fails fatally, hangs or holds up loading on
// demand: how the HTTP and gRPC fault tests reach DESIGN.md's failure
// classes. Header-only; link kaon_serve_command and kaon_models.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "models/registry.h"
#include "server/engine/engine_setup.h"
#include "server/cli/serve_command.h"
#include "server/common/status.h"
#include "server/backend/causal_lm.h"
#include "tests/common/test_paths.h"

namespace kaon::testing {

// Shared by a test and its model. Allocate it and never free it: after a
// watchdog trip the engine (and the model in it) is deliberately leaked.
struct Faults {
  std::atomic<bool> fail_next{false};   // the next step fails (500 / INTERNAL for its requests)
  std::atomic<bool> fatal_next{false};  // the next step fails fatally (a sticky CUDA error)
  std::mutex mu;
  std::condition_variable cv;
  bool hang = false;        // steps block until Release
  bool block_load = false;  // loading blocks until Release
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
  std::string device_name() const override { return inner_->device_name(); }
  int64_t allocated_bytes() const override { return inner_->allocated_bytes(); }
  absl::Status Sample(int32_t sampleable_vocab, std::span<const SamplingRow> rows, SampleResult* out) override {
    return inner_->Sample(sampleable_vocab, rows, out);
  }
  absl::Status Logprobs(int64_t row, int32_t token, int32_t k, float* token_logprob,
                        std::vector<TokenLogprob>* top) override {
    return inner_->Logprobs(row, token, k, token_logprob, top);
  }
  absl::Status Forward(const ForwardBatch& batch) override {
    if (faults_->fail_next.exchange(false)) return absl::InternalError("injected fault");
    if (faults_->fatal_next.exchange(false)) return FatalError("injected sticky error");
    {
      std::unique_lock<std::mutex> lock(faults_->mu);
      if (faults_->hang) {
        faults_->hanging = true;
        faults_->cv.wait(lock, [this] { return !faults_->hang; });
      }
    }
    return inner_->Forward(batch);
  }

 private:
  std::unique_ptr<CausalLM> inner_;
  Faults* faults_;
};

// A port that was free a moment ago (for flags that take no 0).
inline int FreePort() {
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

// The bundled model served by RunServeCommand on a thread, HTTP on a port the
// kernel picks. Stopped with SIGTERM (the serve command's own handler).
class InProcessServer {
 public:
  // `configure` may change the flags (e.g. add a gRPC port) before the start.
  InProcessServer(Faults* faults, double step_timeout_s, const std::function<void(ServeFlags&)>& configure = nullptr) {
    flags_.model_dir = BundledModelDir();
    flags_.port = 0;
    flags_.engine_step_timeout_s = step_timeout_s;
    flags_.shutdown_timeout_s = 5;
    flags_.engine.options.model_loader = [faults](const std::string& dir, const ModelInfo& info,
                                                  const Capacity& capacity)
        -> absl::StatusOr<std::unique_ptr<CausalLM>> {
      {
        std::unique_lock<std::mutex> lock(faults->mu);
        faults->cv.wait(lock, [faults] { return !faults->block_load; });
      }
      absl::StatusOr<std::unique_ptr<CausalLM>> m = LoadCpuModel(dir, info, capacity);
      if (!m.ok()) return m.status();
      return std::unique_ptr<CausalLM>(new FaultyModel(std::move(*m), faults));
    };
    if (configure) configure(flags_);
    std::future<int> ready = ready_.get_future();
    std::future<int> listening = listening_.get_future();
    thread_ = std::thread([this] {
      ServeHooks hooks;
      hooks.on_listening = [this](int p) { listening_.set_value(p); };
      hooks.on_ready = [this](int p) {
        announced_ = true;
        ready_.set_value(p);
      };
      exit_code_ = RunServeCommand(flags_, out_, err_, hooks);
      if (!announced_) ready_.set_value(-1);
    });
    if (listening.wait_for(std::chrono::seconds(20)) == std::future_status::ready) listening_port_ = listening.get();
    ready_future_ = std::move(ready);
    if (!faults->block_load) WaitReady();
  }
  ~InProcessServer() {
    if (thread_.joinable()) {
      ::kill(::getpid(), SIGTERM);
      thread_.join();
    }
  }
  InProcessServer(const InProcessServer&) = delete;
  InProcessServer& operator=(const InProcessServer&) = delete;

  // The HTTP port once the model is loaded (0 before, or if it never was).
  int port() const { return port_; }
  // The HTTP port while the model is still loading.
  int listening_port() const { return listening_port_; }
  const ServeFlags& flags() const { return flags_; }
  // Waits for the model to load (after Faults::Release, when loading was blocked).
  int WaitReady() {
    if (ready_future_.valid() && ready_future_.wait_for(std::chrono::seconds(20)) == std::future_status::ready) {
      const int p = ready_future_.get();
      port_ = p > 0 ? p : 0;
    }
    return port_;
  }
  // RunServeCommand's exit code once it returns (-1: still running after `seconds`).
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
  std::promise<int> listening_;
  std::future<int> ready_future_;
  std::atomic<bool> announced_{false};
  int port_ = 0;
  int listening_port_ = 0;
  std::thread thread_;
};

}  // namespace kaon::testing
