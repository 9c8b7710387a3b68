#include "server/engine/engine_watchdog.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "absl/strings/str_cat.h"
#include "server/common/thread_name.h"
#include "server/engine/engine.h"

namespace kaon {

EngineWatchdog::EngineWatchdog(std::function<std::optional<std::string>()> check, double period_seconds,
                               std::function<void(const std::string&)> on_trip)
    : check_(std::move(check)), period_seconds_(period_seconds), on_trip_(std::move(on_trip)) {
  thread_ = std::thread([this] {
    SetCurrentThreadName("kaon-watchdog");
    Run();
  });
}

EngineWatchdog::~EngineWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::unique_ptr<EngineWatchdog> EngineWatchdog::ForEngine(const Engine* engine, double step_limit_seconds,
                                                          std::function<void(const std::string&)> on_trip) {
  auto check = [engine, step_limit_seconds]() -> std::optional<std::string> {
    if (std::optional<std::string> fatal = engine->fatal_error()) return fatal;
    const double elapsed = engine->current_step_seconds();
    if (elapsed > step_limit_seconds) {
      return absl::StrCat("an engine step has run for ", elapsed, " s, over --engine-step-timeout ",
                          step_limit_seconds, " s");
    }
    return std::nullopt;
  };
  return std::make_unique<EngineWatchdog>(std::move(check), std::clamp(step_limit_seconds / 10, 0.01, 0.5),
                                          std::move(on_trip));
}

void EngineWatchdog::Run() {
  const auto period = std::chrono::duration<double>(period_seconds_);
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
    if (std::optional<std::string> reason = check_()) {
      lock.unlock();
      on_trip_(*reason);
      return;
    }
  }
}

}  // namespace kaon
