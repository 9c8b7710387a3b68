// A fixed set of threads that run posted tasks in order of posting. Mainly
// ("kaon-parse") for the heavy per-request work of the front ends: parsing
// large bodies, rendering chat templates, tokenizing. It keeps that work off the I/O threads, so /health and small
// requests are answered while a large body is parsed. Bounded: TryPost
// refuses once `max_queued` tasks wait, and the front end answers "busy".
// The threads run at a lower scheduling priority (nice +`nice`) than the I/O
// and engine threads, so on a machine with few cores a stream of heavy
// requests slows only itself.
// (gRPC's reactors also run their engine wake-ups on one, unbounded and at
// normal priority.) Thread-safe. The destructor runs every task already
// accepted, then joins.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kaon {

struct WorkPoolOptions {
  int num_threads = 2;
  size_t max_queued = 256;  // tasks waiting (not running) before TryPost refuses; SIZE_MAX: never
  int nice = 5;             // added to the threads' nice value; 0 leaves it
  const char* thread_name = "kaon-parse";  // at most 15 characters (Linux)
};

class WorkPool {
 public:
  explicit WorkPool(const WorkPoolOptions& options);
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Queues `task`; false (and `task` dropped unrun) when the queue is full.
  bool TryPost(std::function<void()> task);

  int num_threads() const { return static_cast<int>(threads_.size()); }
  // Tasks waiting to start (for tests and metrics).
  size_t queued() const;

 private:
  void Run();

  const WorkPoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace kaon
