#include "server/common/work_pool.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>

#include "server/common/thread_name.h"

namespace kaon {

WorkPool::WorkPool(const WorkPoolOptions& options) : options_(options) {
  const int n = std::max(1, options_.num_threads);
  threads_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) threads_.emplace_back(&WorkPool::Run, this);
}

WorkPool::~WorkPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

bool WorkPool::TryPost(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || tasks_.size() >= options_.max_queued) return false;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

size_t WorkPool::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_.size();
}

void WorkPool::Run() {
  SetCurrentThreadName(options_.thread_name);
  if (options_.nice > 0) {
    // On Linux a nice value belongs to the thread (its tid), not the
    // process. Lowering priority needs no privilege; a failure only loses
    // the preference, so it is not an error.
    const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
    static_cast<void>(::setpriority(PRIO_PROCESS, tid, ::getpriority(PRIO_PROCESS, tid) + options_.nice));
  }
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
      // Accepted tasks run even when stopping: each one owes its caller an
      // answer.
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    // A task owes its caller an answer and catches its own errors; one that
    // still throws must not take the process down with it.
    try {
      task();
    } catch (...) {
    }
  }
}

}  // namespace kaon
