// Watches the engine from its own thread: when one step runs longer than the
// limit (a hung kernel, a deadlock, a swapping machine), the engine can no
// longer be trusted to finish anything, so `on_trip` is called once with the
// elapsed seconds and the server fails fast instead of hanging its clients.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace kaon {

class StepWatchdog {
 public:
  // `step_seconds` returns how long the current step has run (0 when idle);
  // it and `on_trip` are called on the watchdog's thread.
  StepWatchdog(std::function<double()> step_seconds, double limit_seconds, std::function<void(double)> on_trip);
  ~StepWatchdog();
  StepWatchdog(const StepWatchdog&) = delete;
  StepWatchdog& operator=(const StepWatchdog&) = delete;

 private:
  void Run();

  std::function<double()> step_seconds_;
  double limit_seconds_;
  std::function<void(double)> on_trip_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kaon
