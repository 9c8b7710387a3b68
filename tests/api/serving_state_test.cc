// The serving state both front ends share: which transitions apply from
// which phase, what health reports, and that listeners see every transition
// once, in order, even when several threads race to make them.
#include "server/api/serving_state.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace kaon::api {
namespace {

using P = ServingPhase;

ServingBackend NamedBackend(const std::string& name) {
  ServingBackend b;
  b.ctx.served_model_name = name;
  return b;
}

TEST(ServingState, StartsLoadingWithoutABackend) {
  ServingState s;
  EXPECT_EQ(s.phase(), P::kLoading);
  EXPECT_EQ(s.backend(), nullptr);
  EXPECT_FALSE(s.drain_started().has_value());
  const Health h = s.health();
  EXPECT_EQ(h.phase, P::kLoading);
  EXPECT_FALSE(h.serving);
}

TEST(ServingState, ReadyOnceWithTheBackendItWasGiven) {
  ServingState s;
  ASSERT_TRUE(s.SetBackend(NamedBackend("first")));
  EXPECT_EQ(s.phase(), P::kReady);
  ASSERT_NE(s.backend(), nullptr);
  EXPECT_EQ(s.backend()->ctx.served_model_name, "first");
  EXPECT_TRUE(s.health().serving);
  // A second backend is refused and the first stays.
  EXPECT_FALSE(s.SetBackend(NamedBackend("second")));
  EXPECT_EQ(s.backend()->ctx.served_model_name, "first");
}

TEST(ServingState, DrainWhileLoadingRefusesTheBackend) {
  ServingState s;
  const auto before = ServingState::Clock::now();
  ASSERT_TRUE(s.BeginDrain());
  EXPECT_EQ(s.phase(), P::kDraining);
  ASSERT_TRUE(s.drain_started().has_value());
  EXPECT_GE(*s.drain_started(), before);
  EXPECT_FALSE(s.SetBackend(NamedBackend("late")));
  EXPECT_EQ(s.backend(), nullptr);
  EXPECT_FALSE(s.health().serving);
  EXPECT_FALSE(s.BeginDrain());  // once
  ASSERT_TRUE(s.MarkStopped());
  EXPECT_EQ(s.phase(), P::kStopped);
}

TEST(ServingState, StoppedAndFailedAreTerminal) {
  ServingState stopped;
  ASSERT_TRUE(stopped.SetBackend(NamedBackend("m")));
  EXPECT_FALSE(stopped.MarkStopped());  // only a drain stops
  ASSERT_TRUE(stopped.BeginDrain());
  ASSERT_TRUE(stopped.MarkStopped());
  EXPECT_FALSE(stopped.Fail("late"));
  EXPECT_FALSE(stopped.BeginDrain());
  EXPECT_EQ(stopped.phase(), P::kStopped);
  EXPECT_EQ(stopped.fail_reason(), "");

  ServingState failed;
  ASSERT_TRUE(failed.SetBackend(NamedBackend("m")));
  ASSERT_TRUE(failed.BeginDrain());
  ASSERT_TRUE(failed.Fail("step hung"));  // a drain can still fail
  EXPECT_FALSE(failed.Fail("again"));
  EXPECT_FALSE(failed.BeginDrain());
  EXPECT_FALSE(failed.MarkStopped());
  EXPECT_EQ(failed.phase(), P::kFailed);
  EXPECT_EQ(failed.fail_reason(), "step hung");
  const Health h = failed.health();
  EXPECT_EQ(h.phase, P::kFailed);
  EXPECT_FALSE(h.serving);
  EXPECT_EQ(h.message, "step hung");
  // The backend stays readable for requests still finishing.
  ASSERT_NE(failed.backend(), nullptr);
}

TEST(ServingState, PhaseNames) {
  EXPECT_STREQ(PhaseName(P::kLoading), "loading");
  EXPECT_STREQ(PhaseName(P::kReady), "ready");
  EXPECT_STREQ(PhaseName(P::kDraining), "draining");
  EXPECT_STREQ(PhaseName(P::kStopped), "stopped");
  EXPECT_STREQ(PhaseName(P::kFailed), "failed");
}

TEST(ServingState, EveryListenerSeesEachTransitionOnceInOrder) {
  ServingState s;
  std::vector<P> a, b;
  const int ia = s.Subscribe([&](P p) {
    a.push_back(p);
    // A listener may read the state it is told about.
    EXPECT_EQ(s.phase(), p);
  });
  s.Subscribe([&](P p) { b.push_back(p); });
  s.SetBackend(NamedBackend("m"));
  s.SetBackend(NamedBackend("again"));  // refused: no notification
  s.BeginDrain();
  s.Unsubscribe(ia);
  s.Fail("x");
  EXPECT_EQ(a, (std::vector<P>{P::kReady, P::kDraining}));
  EXPECT_EQ(b, (std::vector<P>{P::kReady, P::kDraining, P::kFailed}));
}

// A signal (drain), the watchdog (fail) and the serve command (backend) can
// race: each listener still sees one legal sequence, the one that happened.
TEST(ServingState, RacingTransitionsStayLegal) {
  for (int round = 0; round < 200; ++round) {
    ServingState s;
    std::mutex mu;
    std::vector<P> seen;
    s.Subscribe([&](P p) {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(p);
    });
    std::atomic<int> go{0};
    std::vector<std::thread> threads;
    threads.emplace_back([&] {
      while (go.load() == 0) {}
      s.SetBackend(NamedBackend("m"));
    });
    threads.emplace_back([&] {
      while (go.load() == 0) {}
      s.BeginDrain();
    });
    threads.emplace_back([&] {
      while (go.load() == 0) {}
      s.Fail("hung");
    });
    go.store(1);
    for (std::thread& t : threads) t.join();
    // Fail always applies (no thread stops), so it is last; before it, at
    // most a ready and then a draining.
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back(), P::kFailed);
    EXPECT_EQ(s.phase(), P::kFailed);
    for (size_t i = 1; i < seen.size(); ++i) EXPECT_LT(static_cast<int>(seen[i - 1]), static_cast<int>(seen[i]));
    EXPECT_LE(seen.size(), 3u);
  }
}

}  // namespace
}  // namespace kaon::api
