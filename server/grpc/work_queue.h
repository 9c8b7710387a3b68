// A few named threads ("kaon-grpc") that run posted closures in order of
// posting. Engine notifications land here: RequestHandle::SetNotify runs on
// the engine thread and must not block or detokenize, and gRPC's callback API
// has no public way to post onto its own threads, so the streaming reactors
// do their draining and writing from these threads instead (one task per
// wake-up, never one thread per stream).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kaon::grpc_api {

class WorkQueue {
 public:
  explicit WorkQueue(int num_threads);
  // Runs what was posted, then joins.
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Thread-safe and non-blocking (a lock held for a push), so callable from
  // the engine thread.
  void Post(std::function<void()> task);

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace kaon::grpc_api
