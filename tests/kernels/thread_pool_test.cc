// The spin-then-park pool: every index runs exactly once per call, whether
// the workers are spinning or parked, and the pool shuts down from either.
#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/thread_pool.h"

namespace kaon::kernels::cpu {
namespace {

void ExpectEachIndexOnce(ThreadPool& pool, int64_t n) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  std::atomic<int> bad_thread{0};
  pool.ParallelFor(n, [&](int64_t b, int64_t e, int t) {
    if (t < 0 || t >= pool.num_threads()) bad_thread.fetch_add(1);
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i << " of " << n;
  EXPECT_EQ(bad_thread.load(), 0);
}

TEST(ThreadPool, BackToBackCallsWhileWorkersSpin) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int round = 0; round < 2000; ++round) ExpectEachIndexOnce(pool, 1 + round % 37);
  }
}

TEST(ThreadPool, CallsAfterWorkersParked) {
  ThreadPool pool(4);
  for (int round = 0; round < 20; ++round) {
    // Longer than the spin: the workers are asleep on the condition variable
    // and the call must wake them (a lost wake-up hangs here).
    std::this_thread::sleep_for(ThreadPool::kSpin * 3);
    ExpectEachIndexOnce(pool, 64);
  }
}

TEST(ThreadPool, EveryWorkerTakesAChunk) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> by_thread(3);
  pool.ParallelFor(3, [&](int64_t, int64_t, int t) { by_thread[static_cast<size_t>(t)].fetch_add(1); });
  for (auto& c : by_thread) EXPECT_EQ(c.load(), 1);
}

TEST(ThreadPool, ShutsDownWhetherSpinningOrParked) {
  { ThreadPool spinning(4); ExpectEachIndexOnce(spinning, 10); }
  {
    ThreadPool parked(4);
    ExpectEachIndexOnce(parked, 10);
    std::this_thread::sleep_for(ThreadPool::kSpin * 3);
  }
  { ThreadPool idle(4); }
  SUCCEED();
}

TEST(ThreadPool, EmptyAndNullPool) {
  ThreadPool pool(2);
  int calls = 0;
  pool.ParallelFor(0, [&](int64_t, int64_t, int) { ++calls; });
  EXPECT_EQ(calls, 0);
  ParallelFor(nullptr, 5, [&](int64_t b, int64_t e, int t) { calls += static_cast<int>(e - b) + t; });
  EXPECT_EQ(calls, 5);
}

}  // namespace
}  // namespace kaon::kernels::cpu
