// A fixed pool of worker threads for the CPU backend's data-parallel loops.
// ParallelFor blocks until every chunk is done; it is called from one thread
// (the engine thread) at a time.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kaon::kernels::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(begin, end, thread_index) over [0, n) split into contiguous chunks,
  // one per thread (the caller takes a chunk too).
  void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  void WorkerLoop(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

// Runs on `pool` when given, otherwise inline on the caller.
void ParallelFor(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);

}  // namespace kaon::kernels::cpu
