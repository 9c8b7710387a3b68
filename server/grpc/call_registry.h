// What every gRPC call consults besides the shared serving state: the live
// generation calls (so a failure can end them) and the work queue their
// engine wake-ups run on. Shared by the service (grpc_server.cc) and the
// reactors (generate_call.cc).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>

#include "server/api/serving_state.h"
#include "server/common/work_pool.h"

namespace kaon::grpc_api {

using api::ServingPhase;

class Wakeable {
 public:
  virtual ~Wakeable() = default;
  // Schedules the call to look at its engine request and the server's
  // phase again. Thread-safe, never blocks.
  virtual void Wake() = 0;
};

class CallRegistry {
 public:
  // `serving` is borrowed and outlives the registry.
  CallRegistry(const api::ServingState* serving, int num_worker_threads)
      : serving_(serving), queue_(QueueOptions(num_worker_threads)) {}

  const api::ServingState& serving() const { return *serving_; }

  // Marks the drain: the generation calls live now are what Shutdown lets
  // finish (and lingers for).
  void NoteDrain() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!drain_noted_) calls_at_drain_ = calls_.size();
    drain_noted_ = true;
  }
  size_t calls_at_drain() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_at_drain_;
  }
  // Wakes every live call; each then reads the serving phase (so after a
  // failure it ends with INTERNAL).
  void WakeAll() {
    std::lock_guard<std::mutex> lock(mu_);
    for (Wakeable* c : calls_) c->Wake();
  }

  // A call registers for its lifetime; Unregister must come before it is
  // destroyed (WakeAll wakes under the lock, so the call cannot vanish
  // meanwhile). A call registering after a failure's WakeAll reads the
  // phase on its own first wake-up.
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
  const api::ServingState* serving_;
  mutable std::mutex mu_;
  std::unordered_set<Wakeable*> calls_;
  bool drain_noted_ = false;
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
