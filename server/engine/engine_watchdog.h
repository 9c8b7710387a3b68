// Watches the engine from its own thread and calls `on_trip` once when it
// can no longer be trusted to finish anything: a step ran past the limit (a
// hung kernel, a deadlock, a swapping machine) or a step failed fatally (a
// sticky CUDA error). The server then fails fast instead of hanging its
// clients, and exits non-zero so an orchestrator restarts it.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace kaon {

class Engine;

class EngineWatchdog {
 public:
  // `check` returns why the engine is dead, or nullopt; it is polled every
  // `period_seconds` and it and `on_trip` run on the watchdog's thread.
  EngineWatchdog(std::function<std::optional<std::string>()> check, double period_seconds,
                 std::function<void(const std::string& reason)> on_trip);
  ~EngineWatchdog();
  EngineWatchdog(const EngineWatchdog&) = delete;
  EngineWatchdog& operator=(const EngineWatchdog&) = delete;

  // The check the server uses: the engine's fatal error, else a step running
  // longer than `step_limit_seconds` (polled at a tenth of the limit, at most
  // every 0.5 s, so a trip comes at most ~10% late).
  static std::unique_ptr<EngineWatchdog> ForEngine(const Engine* engine, double step_limit_seconds,
                                                   std::function<void(const std::string& reason)> on_trip);

 private:
  void Run();

  std::function<std::optional<std::string>()> check_;
  double period_seconds_;
  std::function<void(const std::string&)> on_trip_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kaon
