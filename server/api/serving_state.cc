#include "server/api/serving_state.h"

#include <algorithm>
#include <utility>

#include "server/engine/engine.h"

namespace kaon::api {

const char* PhaseName(ServingPhase phase) {
  switch (phase) {
    case ServingPhase::kLoading: return "loading";
    case ServingPhase::kReady: return "ready";
    case ServingPhase::kDraining: return "draining";
    case ServingPhase::kStopped: return "stopped";
    case ServingPhase::kFailed: return "failed";
  }
  return "unknown";
}

std::string ServingState::fail_reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fail_reason_;
}

std::optional<ServingState::Clock::time_point> ServingState::drain_started() const {
  std::lock_guard<std::mutex> lock(mu_);
  return drain_started_;
}

Health ServingState::health() const {
  Health h;
  h.phase = phase();
  if (h.phase == ServingPhase::kFailed) {
    h.message = fail_reason();
    return h;
  }
  if (const ServingBackend* b = backend(); b != nullptr && b->engine != nullptr) {
    if (std::optional<std::string> fatal = b->engine->fatal_error()) {
      h.phase = ServingPhase::kFailed;
      h.message = std::move(*fatal);
      return h;
    }
  }
  h.serving = h.phase == ServingPhase::kReady;
  return h;
}

bool ServingState::Transition(std::initializer_list<ServingPhase> from, ServingPhase to,
                              const std::function<void()>& while_locked) {
  std::lock_guard<std::mutex> notify(notify_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    const ServingPhase now = phase_.load(std::memory_order_relaxed);
    if (std::find(from.begin(), from.end(), now) == from.end()) return false;
    if (while_locked) while_locked();
    phase_.store(to, std::memory_order_release);
  }
  for (auto& [id, listener] : listeners_) listener(to);
  return true;
}

bool ServingState::SetBackend(ServingBackend backend) {
  return Transition({ServingPhase::kLoading}, ServingPhase::kReady, [&] {
    backend_ = std::move(backend);
    backend_ptr_.store(&*backend_, std::memory_order_release);
  });
}

bool ServingState::BeginDrain() {
  return Transition({ServingPhase::kLoading, ServingPhase::kReady}, ServingPhase::kDraining,
                    [&] { drain_started_ = Clock::now(); });
}

bool ServingState::Fail(std::string reason) {
  return Transition({ServingPhase::kLoading, ServingPhase::kReady, ServingPhase::kDraining}, ServingPhase::kFailed,
                    [&] { fail_reason_ = std::move(reason); });
}

bool ServingState::MarkStopped() { return Transition({ServingPhase::kDraining}, ServingPhase::kStopped); }

int ServingState::Subscribe(Listener listener) {
  std::lock_guard<std::mutex> notify(notify_mu_);
  const int id = next_id_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void ServingState::Unsubscribe(int id) {
  std::lock_guard<std::mutex> notify(notify_mu_);
  listeners_.erase(id);
}

}  // namespace kaon::api
