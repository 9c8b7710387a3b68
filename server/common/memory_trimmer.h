// Returns memory freed after a large request to the operating system. glibc
// keeps freed heap memory for reuse (and raises its mmap threshold after
// large frees), so without this one 16 MB prompt leaves hundreds of MB of
// RSS behind it. The front ends call Request() when a large request ends;
// a thread trims shortly after (coalescing bursts), off every request path.
// Thread-safe; the destructor joins.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace kaon {

class MemoryTrimmer {
 public:
  // `delay`: how long after a Request the trim runs, so that the frees that
  // follow a request's end (on other threads) come first.
  explicit MemoryTrimmer(std::chrono::milliseconds delay = std::chrono::milliseconds(500));
  ~MemoryTrimmer();
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

  void Request();
  // Trims done so far (for tests).
  int trims() const;

  // Process-wide allocator settings for serving, applied once at start-up:
  // allocations of 1 MiB and more are mapped on their own and unmapped when
  // freed, instead of glibc's threshold growing to 32 MiB after the first
  // large free.
  static void ConfigureAllocator();

 private:
  void Run();

  const std::chrono::milliseconds delay_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;
  bool stop_ = false;
  int trims_ = 0;
  std::thread thread_;
};

}  // namespace kaon
