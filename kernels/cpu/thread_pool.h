// A fixed pool of worker threads for the CPU backend's data-parallel loops.
// ParallelFor blocks until every chunk is done; it is called from one thread
// (the engine thread) at a time.
//
// Spin, then park: a decode step is ~100 ParallelFor calls a few
// microseconds to a millisecond apart, and a futex wake-up per call is what
// a mutex and condition variable cost (kaon-bench C=16 on llama-70m, two
// rounds: 314 / 330 tok/s parking at once, 352 / 359 spinning 30 us, 307 /
// 366 spinning 200 us, which competes with the HTTP threads for the cores
// between steps). So an idle worker spins on the job counter for a short while (with
// the CPU's pause hint) and only then sleeps on the condition variable; the
// caller wakes sleepers only when there are any. A server with no work
// parks every worker within kSpin of its last step.
#pragma once

#include <atomic>
#include <chrono>
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

  // How long an idle worker (or the caller, waiting for the last chunk)
  // spins before it sleeps (or yields).
  static constexpr std::chrono::microseconds kSpin{30};

 private:
  void WorkerLoop(int index);
  // Returns the new job generation, or the old one when stopping.
  uint64_t AwaitJob(uint64_t seen);

  std::vector<std::thread> workers_;
  // The job: written by the caller before it bumps generation_ (release),
  // read by workers after they see the bump (acquire).
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  // On their own cache lines: workers poll generation_ while finishing
  // workers decrement pending_.
  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};
  alignas(64) std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable work_cv_;
};

// Runs on `pool` when given, otherwise inline on the caller.
void ParallelFor(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);

}  // namespace kaon::kernels::cpu
