#include "server/common/memory_trimmer.h"

#include <malloc.h>

#include "server/common/thread_name.h"

namespace kaon {

MemoryTrimmer::MemoryTrimmer(std::chrono::milliseconds delay) : delay_(delay), thread_(&MemoryTrimmer::Run, this) {}

MemoryTrimmer::~MemoryTrimmer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void MemoryTrimmer::Request() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    requested_ = true;
  }
  cv_.notify_all();
}

int MemoryTrimmer::trims() const {
  std::lock_guard<std::mutex> lock(mu_);
  return trims_;
}

void MemoryTrimmer::ConfigureAllocator() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  // Heap tops above this are given back at free() (the fixed mmap threshold
  // above also fixes this one, which would otherwise follow it).
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
#endif
}

void MemoryTrimmer::Run() {
  SetCurrentThreadName("kaon-trim");
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || requested_; });
    if (stop_) return;
    // Requests during the delay join this trim.
    cv_.wait_for(lock, delay_, [this] { return stop_; });
    if (stop_) return;
    requested_ = false;
    lock.unlock();
#ifdef __GLIBC__
    malloc_trim(0);  // every arena, free pages in the middle of heaps too
#endif
    lock.lock();
    ++trims_;
  }
}

}  // namespace kaon
