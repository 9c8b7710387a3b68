// What every gRPC call consults: whether the server is loading, serving,
// draining or failed; the backend once loaded; the live generation calls
// (so Fail can end them); and the work queue their engine wake-ups run on.
// Shared by the service (grpc_server.cc) and the reactors (generate_call.cc).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>

#include "server/api/serving_backend.h"
#include "server/common/work_pool.h"

namespace kaon::grpc_api {

enum class ServingPhase { kLoading, kServing, kDraining, kFailed };

class Wakeable {
 public:
  virtual ~Wakeable() = default;
  // Schedules the call to look at its engine request and the server's
  // phase again. Thread-safe, never blocks.
  virtual void Wake() = 0;
};

class ServingState {
 public:
  explicit ServingState(int num_worker_threads) : queue_(QueueOptions(num_worker_threads)) {}

  ServingPhase phase() const {
    std::lock_guard<std::mutex> lock(mu_);
    return phase_;
  }
  std::string fail_reason() const {
    std::lock_guard<std::mutex> lock(mu_);
    return fail_reason_;
  }
  // The backend, valid from SetBackend until the server is destroyed (the
  // serve command keeps the engine alive that long); null before.
  const api::ServingBackend* backend() const {
    std::lock_guard<std::mutex> lock(mu_);
    return backend_ ? &*backend_ : nullptr;
  }

  // Each returns false (and changes nothing) when the transition no longer
  // applies (e.g. SetBackend after a drain began).
  bool SetBackend(api::ServingBackend backend) {
    std::lock_guard<std::mutex> lock(mu_);
    if (phase_ != ServingPhase::kLoading) return false;
    backend_ = std::move(backend);
    phase_ = ServingPhase::kServing;
    return true;
  }
  bool BeginDrain() {
    std::lock_guard<std::mutex> lock(mu_);
    if (phase_ == ServingPhase::kDraining || phase_ == ServingPhase::kFailed) return false;
    phase_ = ServingPhase::kDraining;
    calls_at_drain_ = calls_.size();
    return true;
  }
  // Generation calls live when the drain began.
  size_t calls_at_drain() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_at_drain_;
  }
  // Wakes every live call so each ends with INTERNAL.
  void Fail(const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu_);
    if (phase_ == ServingPhase::kFailed) return;
    phase_ = ServingPhase::kFailed;
    fail_reason_ = reason;
    for (Wakeable* c : calls_) c->Wake();
  }

  // A call registers for its lifetime; Unregister must come before it is
  // destroyed (Fail wakes under the lock, so the call cannot vanish meanwhile).
  void Register(Wakeable* call) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.insert(call);
  }
  void Unregister(Wakeable* call) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.erase(call);
  }

  size_t num_calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_.size();
  }

  // Where the reactors drain engine events and start writes: a few named
  // threads ("kaon-grpc"), since RequestHandle::SetNotify runs on the engine
  // thread and must not block or detokenize, and gRPC's callback API has no
  // public way to post onto its own threads. Unbounded (a wake-up is never
  // refused), one task per wake-up, never one thread per stream.
  WorkPool& queue() { return queue_; }

 private:
  mutable std::mutex mu_;
  ServingPhase phase_ = ServingPhase::kLoading;
  std::string fail_reason_;
  std::optional<api::ServingBackend> backend_;
  std::unordered_set<Wakeable*> calls_;
  size_t calls_at_drain_ = 0;
  static WorkPoolOptions QueueOptions(int num_threads) {
    WorkPoolOptions o;
    o.num_threads = num_threads;
    o.max_queued = SIZE_MAX;
    o.nice = 0;
    o.thread_name = "kaon-grpc";
    return o;
  }
  WorkPool queue_;
};

}  // namespace kaon::grpc_api
