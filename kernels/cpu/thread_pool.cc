#include "kernels/cpu/thread_pool.h"

#include <pthread.h>

#include <algorithm>

namespace kaon::kernels::cpu {
namespace {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins on `done` for up to ThreadPool::kSpin, checking the clock only every
// 64 polls (a clock read costs more than a poll).
template <class Done>
bool SpinUntil(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + ThreadPool::kSpin;
  for (int i = 1;; ++i) {
    if (done()) return true;
    CpuRelax();
    if (i % 64 == 0 && std::chrono::steady_clock::now() >= deadline) return false;
  }
}

inline void RunChunk(int64_t n, int parts, int index, const std::function<void(int64_t, int64_t, int)>& fn) {
  const int64_t begin = n * index / parts;
  const int64_t end = n * (index + 1) / parts;
  if (begin < end) fn(begin, end, index);
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  for (int i = 1; i < std::max(1, num_threads); ++i) {
    workers_.emplace_back([this, i] { WorkerLoop(i); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

uint64_t ThreadPool::AwaitJob(uint64_t seen) {
  auto ready = [&] { return generation_.load(std::memory_order_acquire) != seen || stop_.load(); };
  if (SpinUntil(ready)) return generation_.load(std::memory_order_acquire);
  std::unique_lock<std::mutex> lock(mu_);
  // Counted before the last check, under the lock: a caller that bumps the
  // generation after that check sees a sleeper and takes the lock to
  // notify, so the wake-up cannot fall between the check and the wait.
  sleepers_.fetch_add(1);
  work_cv_.wait(lock, ready);
  sleepers_.fetch_sub(1);
  return generation_.load(std::memory_order_acquire);
}

void ThreadPool::WorkerLoop(int index) {
  // Named so per-thread CPU accounting (/proc/PID/task/*/comm) can tell
  // model work from the front end's. kernels/ stays a leaf, hence no helper.
  pthread_setname_np(pthread_self(), "kaon-worker");
  uint64_t seen = 0;
  for (;;) {
    const uint64_t g = AwaitJob(seen);
    if (stop_.load()) return;
    seen = g;
    RunChunk(job_n_, num_threads(), index, *job_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (workers_.empty() || n <= 1) {
    if (n > 0) fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1);  // seq_cst: ordered before the sleepers_ read
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mu_); }
    work_cv_.notify_all();
  }
  RunChunk(n, num_threads(), 0, fn);
  auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  // A worker that lost its core (the front end's threads share the
  // machine) would keep a spinning caller from giving it back: yield then.
  while (!SpinUntil(done)) std::this_thread::yield();
}

void ParallelFor(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (pool) {
    pool->ParallelFor(n, fn);
  } else if (n > 0) {
    fn(0, n, 0);
  }
}

}  // namespace kaon::kernels::cpu
