#include "server/engine/engine_watchdog.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"

namespace kaon {
namespace {

bool WaitFor(const std::atomic<int>& v, int value) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (v.load() != value && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return v.load() == value;
}

TEST(EngineWatchdogTest, TripsOnceWithTheReason) {
  std::mutex mu;
  std::optional<std::string> state;
  std::atomic<int> trips{0};
  std::string reported;
  EngineWatchdog w(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return state;
      },
      0.01,
      [&](const std::string& why) {
        reported = why;
        ++trips;
      });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(trips.load(), 0);  // healthy: never trips
  {
    std::lock_guard<std::mutex> lock(mu);
    state = "sticky CUDA error";
  }
  ASSERT_TRUE(WaitFor(trips, 1));
  EXPECT_EQ(reported, "sticky CUDA error");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(trips.load(), 1);  // once only
}

TEST(EngineWatchdogTest, DestructionIsPrompt) {
  std::atomic<int> trips{0};
  const auto start = std::chrono::steady_clock::now();
  {
    EngineWatchdog w([] { return std::optional<std::string>(); }, 0.5, [&](const std::string&) { ++trips; });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(trips.load(), 0);
  // The destructor wakes the poll at once rather than waiting out the period.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(400));
}

}  // namespace
}  // namespace kaon
