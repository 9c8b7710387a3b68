// The bounded hand-off from the engine thread to one request's consumer.
// The engine never blocks on it: when the consumer lags, new tokens are
// merged into the newest pending event instead of queueing more events, so
// memory stays bounded and the engine keeps stepping. Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "server/engine/request_output.h"

namespace kaon {

class RequestChannel {
 public:
  explicit RequestChannel(size_t max_pending = 64) : max_pending_(max_pending) {}

  // Engine side: never blocks.
  void Push(RequestOutput event);
  // Consumer side: blocks until an event is available.
  RequestOutput Pop();
  // Consumer side: an event if one is ready.
  std::optional<RequestOutput> TryPop();
  // Consumer side, for event-loop consumers (no thread per stream): `notify`
  // runs on the engine thread after every Push, outside the channel's lock;
  // it must only schedule work (e.g. post to an io_context), never block.
  // Set it before the events it should cover can arrive, or poll once after.
  void SetNotify(std::function<void()> notify);

 private:
  static void Merge(RequestOutput& into, RequestOutput&& more);

  const size_t max_pending_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RequestOutput> pending_;
  // Guarded by mu_; the pointer is copied out to call it, outside the lock.
  // Shared rather than a std::function copied per Push: a callback capturing
  // more than the small-buffer size would allocate on every token.
  std::shared_ptr<const std::function<void()>> notify_;
};

}  // namespace kaon
