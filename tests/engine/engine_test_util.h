// Helpers for driving the real engine in tests.
#pragma once

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/engine/engine.h"

namespace kaon::testing {

struct Collected {
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  std::string text;
  FinishReason finish = FinishReason::kNone;
  std::variant<std::monostate, int32_t, std::string> stop_reason;
  Usage usage;
  std::string error;
  int events = 0;
};

// Drains every choice of a handle (index = choice).
inline std::vector<Collected> DrainAll(RequestHandle& h, int n = 1) {
  std::vector<Collected> out(n);
  while (auto ev = h.Next()) {
    Collected& c = out.at(ev->index);
    ++c.events;
    c.ids.insert(c.ids.end(), ev->token_ids.begin(), ev->token_ids.end());
    for (const auto& lp : ev->logprobs) c.logprobs.push_back(lp.logprob);
    c.text += ev->text;
    if (!ev->error.empty()) c.error = ev->error;
    if (ev->finished()) {
      c.finish = ev->finish_reason;
      c.stop_reason = ev->stop_reason;
      if (ev->usage) c.usage = *ev->usage;
    }
  }
  return out;
}

inline Collected Drain(RequestHandle& h) { return DrainAll(h, 1)[0]; }

inline std::unique_ptr<Engine> MakeEngine(const std::string& dir, EngineConfig config = {}) {
  if (config.options.num_threads == 0) config.options.num_threads = 2;
  auto e = Engine::Create(dir, config);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(*e) : nullptr;
}

inline GenerationRequest Greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
  GenerationRequest r;
  r.prompt_ids = std::move(prompt);
  r.params.temperature = 0.0f;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  r.params.logprobs = 0;
  return r;
}

// Polls `cond` for up to 10 s.
template <typename F>
bool Eventually(F cond) {
  for (int i = 0; i < 1000; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

}  // namespace kaon::testing
