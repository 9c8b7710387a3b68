// The one serving state of a `kaon serve` process, shared by every front end
// (HTTP, gRPC) and what their health endpoints report:
//
//   loading ──SetBackend──▶ ready ──BeginDrain──▶ draining ──MarkStopped──▶ stopped
//      │                      │                      │
//      └───────BeginDrain─────┼──────────────────────┘ (a signal while loading)
//      └──────────Fail────────┴──────────Fail────────▶ failed
//
// A transition happens once, in one place (a signal handler, the engine
// watchdog, the serve command), and every front end learns of it through
// its listener, so HTTP and gRPC can never disagree about whether the
// server serves. Reads (phase, backend) are lock-free: every request
// consults them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "server/api/serving_backend.h"

namespace kaon::api {

enum class ServingPhase { kLoading, kReady, kDraining, kStopped, kFailed };

// "loading", "ready", "draining", "stopped", "failed".
const char* PhaseName(ServingPhase phase);

// What a health endpoint reports.
struct Health {
  ServingPhase phase = ServingPhase::kLoading;
  bool serving = false;   // only in kReady
  std::string message;    // why it failed (kFailed only)
};

class ServingState {
 public:
  using Listener = std::function<void(ServingPhase)>;
  using Clock = std::chrono::system_clock;

  ServingState() = default;
  ServingState(const ServingState&) = delete;
  ServingState& operator=(const ServingState&) = delete;

  ServingPhase phase() const { return phase_.load(std::memory_order_acquire); }
  // Valid from SetBackend until the state is destroyed; null before.
  const ServingBackend* backend() const { return backend_ptr_.load(std::memory_order_acquire); }
  std::string fail_reason() const;
  // When draining began (a signal or Shutdown), if it did.
  std::optional<Clock::time_point> drain_started() const;

  // The health view: also a fatal engine error the watchdog has not yet
  // turned into Fail, so probes see it at once.
  Health health() const;

  // Each returns whether the transition happened; none applies twice, and
  // none leaves a terminal phase (stopped, failed).
  bool SetBackend(ServingBackend backend);  // loading → ready
  bool BeginDrain();                        // loading | ready → draining
  bool Fail(std::string reason);            // loading | ready | draining → failed
  bool MarkStopped();                       // draining → stopped

  // Listeners are called after every transition with the new phase, in the
  // order the transitions happened, on the thread that made it. A listener
  // must not block or make a transition itself (post that elsewhere).
  // Unsubscribe returns once no call of that listener is running.
  int Subscribe(Listener listener);
  void Unsubscribe(int id);

 private:
  // Under notify_mu_: changes the phase when it is one of `from`, then tells
  // every listener.
  bool Transition(std::initializer_list<ServingPhase> from, ServingPhase to,
                  const std::function<void()>& while_locked = {});

  // Held across a transition and its notifications (so listeners see them
  // in order), and by Subscribe/Unsubscribe.
  std::mutex notify_mu_;
  std::map<int, Listener> listeners_;
  int next_id_ = 0;

  mutable std::mutex mu_;  // guards the fields below
  std::optional<ServingBackend> backend_;
  std::string fail_reason_;
  std::optional<Clock::time_point> drain_started_;

  std::atomic<ServingPhase> phase_{ServingPhase::kLoading};
  std::atomic<const ServingBackend*> backend_ptr_{nullptr};
};

}  // namespace kaon::api
