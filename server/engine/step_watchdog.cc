#include "server/engine/step_watchdog.h"

#include <algorithm>
#include <chrono>

#include "server/common/thread_name.h"

namespace kaon {

StepWatchdog::StepWatchdog(std::function<double()> step_seconds, double limit_seconds,
                           std::function<void(double)> on_trip)
    : step_seconds_(std::move(step_seconds)), limit_seconds_(limit_seconds), on_trip_(std::move(on_trip)) {
  thread_ = std::thread([this] {
    SetCurrentThreadName("kaon-watchdog");
    Run();
  });
}

StepWatchdog::~StepWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void StepWatchdog::Run() {
  // Poll at a tenth of the limit (at most every 0.5 s), so a trip comes at
  // most ~10% late without the check costing anything measurable.
  const auto period = std::chrono::duration<double>(std::clamp(limit_seconds_ / 10, 0.01, 0.5));
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
    const double elapsed = step_seconds_();
    if (elapsed > limit_seconds_) {
      lock.unlock();
      on_trip_(elapsed);
      return;
    }
  }
}

}  // namespace kaon
