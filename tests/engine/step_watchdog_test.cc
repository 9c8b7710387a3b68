#include "server/engine/step_watchdog.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"

namespace kaon {
namespace {

TEST(StepWatchdogTest, TripsOnceWhenAStepRunsPastTheLimit) {
  std::atomic<double> elapsed{0};
  std::atomic<int> trips{0};
  std::atomic<double> reported{0};
  StepWatchdog w([&] { return elapsed.load(); }, 0.2, [&](double s) {
    reported = s;
    ++trips;
  });
  elapsed = 0.1;  // a slow step under the limit
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(trips.load(), 0);
  elapsed = 0.5;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (trips.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(trips.load(), 1);
  EXPECT_EQ(reported.load(), 0.5);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(trips.load(), 1);  // once only
}

TEST(StepWatchdogTest, IdleEngineNeverTripsAndDestructionIsPrompt) {
  std::atomic<int> trips{0};
  const auto start = std::chrono::steady_clock::now();
  {
    StepWatchdog w([] { return 0.0; }, 60, [&](double) { ++trips; });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(trips.load(), 0);
  // The poll period is capped at 0.5 s, and the destructor wakes it at once.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(400));
}

}  // namespace
}  // namespace kaon
