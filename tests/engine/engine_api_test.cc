// The engine's request API: stop strings and streaming text, abort on drop
// (blocks freed), n > 1, queue limits, parameter errors, and the
// distribution of seeded samples.
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <set>

#include "nlohmann/json.hpp"
#include "tests/common/test_paths.h"
#include "tests/engine/engine_test_util.h"
#include "tests/engine/next_token_logprobs.h"

namespace kaon {
namespace {

using testing::Collected;
using testing::Drain;
using testing::DrainAll;
using testing::Greedy;
using testing::MakeEngine;

nlohmann::json Goldens() {
  return nlohmann::json::parse(std::ifstream(testing::BundledModelDir() + "/golden.json"));
}

TEST(EngineApi, StreamedTextMatchesGoldenAndStopsAtStopString) {
  auto engine = MakeEngine(testing::BundledModelDir());
  const auto g = Goldens()["cases"][0];
  const auto prompt = g["prompt_token_ids"].get<std::vector<int32_t>>();
  const std::string golden_text = g["greedy_text"].get<std::string>();

  const Collected full = Drain(**engine->Submit(Greedy(prompt, 128)));
  EXPECT_EQ(full.ids, g["greedy_token_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(full.text, golden_text);  // concatenated deltas
  EXPECT_EQ(full.finish, FinishReason::kLength);
  EXPECT_EQ(full.usage.prompt_tokens, 5);
  EXPECT_EQ(full.usage.completion_tokens, 128);

  GenerationRequest r = Greedy(prompt, 128);
  r.params.stop = {"Lily"};
  const Collected stopped = Drain(**engine->Submit(r));
  EXPECT_EQ(stopped.text, golden_text.substr(0, golden_text.find("Lily")));
  EXPECT_EQ(stopped.finish, FinishReason::kStop);
  EXPECT_EQ(std::get<std::string>(stopped.stop_reason), "Lily");
  EXPECT_LT(stopped.ids.size(), 20u);

  r.params.include_stop_str_in_output = true;
  const Collected included = Drain(**engine->Submit(r));
  EXPECT_EQ(included.text, golden_text.substr(0, golden_text.find("Lily") + 4));

  // A stop token id finishes with that id as the reason.
  GenerationRequest t = Greedy(prompt, 128);
  t.params.stop_token_ids = {full.ids[3]};
  const Collected by_id = Drain(**engine->Submit(t));
  EXPECT_EQ(by_id.finish, FinishReason::kStop);
  EXPECT_EQ(std::get<int32_t>(by_id.stop_reason), full.ids[3]);
  EXPECT_EQ(by_id.ids.size(), 4u);
}

// Event-loop consumption: a notify callback plus TryNext, no blocking Next.
TEST(EngineApi, NotifyAndTryNextDeliverTheSameStream) {
  auto engine = MakeEngine(testing::BundledModelDir());
  const auto g = Goldens()["cases"][0];
  for (int32_t best_of : {0, 3}) {
    GenerationRequest r = Greedy(g["prompt_token_ids"].get<std::vector<int32_t>>(), 128);
    if (best_of) {
      r.params.best_of = best_of;
      r.params.temperature = 0.0f;
    }
    std::mutex mu;
    std::condition_variable cv;
    int notified = 0;
    auto h = engine->Submit(r);
    ASSERT_TRUE(h.ok());
    (*h)->SetNotify([&] {
      std::lock_guard<std::mutex> lock(mu);
      ++notified;
      cv.notify_one();
    });
    std::string text;
    std::vector<int32_t> ids;
    int seen = 0;
    while (!(*h)->done()) {
      while (auto ev = (*h)->TryNext()) {
        text += ev->text;
        ids.insert(ids.end(), ev->token_ids.begin(), ev->token_ids.end());
      }
      if ((*h)->done()) break;
      std::unique_lock<std::mutex> lock(mu);
      // Events that arrived before SetNotify are caught by the poll above;
      // later ones notify. The timeout only bounds a broken notify path.
      ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return notified != seen; }));
      seen = notified;
    }
    EXPECT_EQ(text, g["greedy_text"].get<std::string>()) << "best_of " << best_of;
    EXPECT_EQ(ids.size(), 128u);
    {
      // The engine thread may still be inside the notify.
      std::lock_guard<std::mutex> lock(mu);
      EXPECT_GT(notified, 0);
    }
    EXPECT_FALSE((*h)->TryNext().has_value());
  }
}

TEST(EngineApi, DroppingAHandleAbortsAndFreesBlocks) {
  auto engine = MakeEngine(testing::TestModelDir("tiny-llama3"));
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  {
    auto h = engine->Submit(Greedy(prompt, 1900));
    ASSERT_TRUE(h.ok());
    ASSERT_TRUE((*h)->Next().has_value());
  }
  EXPECT_TRUE(testing::Eventually([&] {
    const EngineStats s = engine->stats();
    return s.num_running == 0 && s.num_waiting == 0 && s.kv_cache_usage == 0.0;
  }));
  // It stopped early: far fewer steps than its 1,900 tokens would take.
  EXPECT_LT(engine->stats().num_steps, 1000);
  // The engine keeps serving.
  EXPECT_EQ(Drain(**engine->Submit(Greedy(prompt, 4))).ids.size(), 4u);
}

TEST(EngineApi, ParallelSamplesShareThePrompt) {
  auto engine = MakeEngine(testing::BundledModelDir());
  GenerationRequest r;
  r.prompt_ids = Goldens()["cases"][3]["prompt_token_ids"].get<std::vector<int32_t>>();
  r.params.n = 4;
  r.params.seed = 7;
  r.params.max_tokens = 24;
  r.params.ignore_eos = true;
  auto h = engine->Submit(r);
  ASSERT_TRUE(h.ok()) << h.status();
  const auto choices = DrainAll(**h, 4);
  std::set<std::vector<int32_t>> distinct;
  for (const Collected& c : choices) {
    EXPECT_EQ(c.ids.size(), 24u);
    EXPECT_EQ(c.finish, FinishReason::kLength);
    distinct.insert(c.ids);
  }
  EXPECT_GT(distinct.size(), 1u);
  // Choices after the first reuse its prompt blocks through the prefix cache.
  const int64_t full_blocks = (static_cast<int64_t>(r.prompt_ids.size()) - 1) / 16 * 16;
  EXPECT_EQ(choices[0].usage.cached_tokens, 0);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(choices[i].usage.cached_tokens, full_blocks) << i;
  // Reproducible: the same seed gives the same four choices.
  const auto again = DrainAll(**engine->Submit(r), 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(again[i].ids, choices[i].ids);
}

TEST(EngineApi, BestOfReturnsTheMostLikelyCandidates) {
  auto engine = MakeEngine(testing::BundledModelDir());
  GenerationRequest r;
  r.prompt_ids = Goldens()["cases"][1]["prompt_token_ids"].get<std::vector<int32_t>>();
  r.params.seed = 11;
  r.params.max_tokens = 16;
  r.params.ignore_eos = true;
  r.params.temperature = 1.2f;
  // The same seed with n = 5 streams the very candidates best_of = 5 ranks.
  r.params.n = 5;
  r.params.logprobs = 0;
  const auto all = DrainAll(**engine->Submit(r), 5);
  std::vector<std::pair<double, std::vector<int32_t>>> scored;
  for (const Collected& c : all) {
    double sum = 0;
    for (float lp : c.logprobs) sum += lp;
    scored.emplace_back(sum, c.ids);
  }
  std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first > b.first; });

  r.params.n = 2;
  r.params.best_of = 5;
  r.params.logprobs = -1;
  const auto best = DrainAll(**engine->Submit(r), 2);
  EXPECT_EQ(best[0].ids, scored[0].second);
  EXPECT_EQ(best[1].ids, scored[1].second);
  EXPECT_TRUE(best[0].logprobs.empty());  // not requested by the client
  EXPECT_EQ(best[0].finish, FinishReason::kLength);
  EXPECT_FALSE(best[0].text.empty());
  // best_of below n is the API's rule (tests/api/request_rules_test.cc).
}

TEST(EngineApi, AbortById) {
  // One sequence at a time: the target waits behind a long blocker, so the
  // abort surely lands before it could finish.
  EngineConfig c;
  c.options.max_num_seqs = 1;
  auto engine = MakeEngine(testing::BundledModelDir(), c);
  const auto prompt = Goldens()["cases"][0]["prompt_token_ids"].get<std::vector<int32_t>>();
  auto blocker = engine->Submit(Greedy(prompt, 300));
  ASSERT_TRUE(blocker.ok());
  GenerationRequest r = Greedy(prompt, 400);
  r.params.n = 2;
  r.params.temperature = 1.0f;
  auto h = engine->Submit(r);
  ASSERT_TRUE(h.ok());
  // Another request submitted right after must not be touched.
  auto other = engine->Submit(Greedy(prompt, 30));
  ASSERT_TRUE(other.ok());
  engine->Abort((*h)->id());
  const auto choices = DrainAll(**h, 2);
  for (const Collected& ch : choices) {
    EXPECT_EQ(ch.finish, FinishReason::kAbort);
    EXPECT_LT(ch.ids.size(), 400u);
  }
  const Collected o = Drain(**other);
  EXPECT_EQ(o.finish, FinishReason::kLength);
  EXPECT_EQ(o.ids.size(), 30u);
  EXPECT_EQ(Drain(**blocker).ids.size(), 300u);
}

// Prompt logprobs equal, position by position, the first-step logprob of
// generating from each prefix alone (an independent path: no prompt rows),
// on a second engine. There a logit_bias forces the sampled token to be the
// prompt's next one; the reported logprob is taken before the bias (raw),
// and the top alternative is the unbiased argmax.
TEST(EngineApi, PromptLogprobsMatchPrefixRuns) {
  const auto prompt = Goldens()["cases"][4]["prompt_token_ids"].get<std::vector<int32_t>>();
  ASSERT_GT(prompt.size(), 8u);
  auto ref = MakeEngine(testing::BundledModelDir());
  ASSERT_NE(ref, nullptr);
  std::vector<double> expected;
  std::vector<int32_t> expected_top;
  for (size_t len = 1; len < prompt.size(); ++len) {
    GenerationRequest gr =
        Greedy(std::vector<int32_t>(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(len)), 1);
    gr.params.logprobs = 1;
    gr.params.logit_bias = {{prompt[len], testing::kForcingBias}};
    auto h = ref->Submit(gr);
    ASSERT_TRUE(h.ok()) << h.status();
    std::vector<SampleResult> steps;
    while (auto ev = (*h)->Next()) steps.insert(steps.end(), ev->logprobs.begin(), ev->logprobs.end());
    ASSERT_EQ(steps.size(), 1u);
    ASSERT_EQ(steps[0].token, prompt[len]) << "the bias must force the prompt's next token";
    ASSERT_EQ(steps[0].top.size(), 1u);
    expected.push_back(steps[0].logprob);
    expected_top.push_back(steps[0].top[0].token);
  }
  for (int64_t chunk : {2048, 5}) {
    SCOPED_TRACE(chunk);
    EngineConfig c;
    c.options.max_num_batched_tokens = chunk;
    auto engine = MakeEngine(testing::BundledModelDir(), c);
    // Warm the prefix cache: prompt-logprob requests must not use it.
    Drain(**engine->Submit(Greedy(prompt, 2)));
    GenerationRequest r = Greedy(prompt, 3);
    r.params.prompt_logprobs = 2;
    auto h = engine->Submit(r);
    ASSERT_TRUE(h.ok()) << h.status();
    std::vector<SampleResult> got;
    while (auto ev = (*h)->Next()) got.insert(got.end(), ev->prompt_logprobs.begin(), ev->prompt_logprobs.end());
    ASSERT_EQ(got.size(), prompt.size() - 1);
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].token, prompt[i + 1]);
      EXPECT_NEAR(got[i].logprob, expected[i], 1e-5) << "position " << i + 1;
      ASSERT_EQ(got[i].top.size(), 2u);
      EXPECT_EQ(got[i].top[0].token, expected_top[i]);
      EXPECT_GE(got[i].top[0].logprob, got[i].top[1].logprob);
    }
  }
}

TEST(EngineApi, QueueLimitAndParameterErrors) {
  EngineConfig c;
  c.options.max_num_seqs = 1;
  c.max_num_queued_requests = 2;
  auto engine = MakeEngine(testing::BundledModelDir(), c);
  const auto prompt = Goldens()["cases"][0]["prompt_token_ids"].get<std::vector<int32_t>>();
  std::vector<std::unique_ptr<RequestHandle>> accepted;
  int refused = 0;
  for (int i = 0; i < 12; ++i) {
    auto h = engine->Submit(Greedy(prompt, 200));
    if (h.ok()) {
      accepted.push_back(std::move(*h));
    } else {
      EXPECT_EQ(h.status().code(), absl::StatusCode::kResourceExhausted) << h.status();
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  accepted.clear();  // aborts them

  // The request rules are the API's (server/api/request_rules.h); a request
  // that skipped them is refused as the caller's bug, never run.
  for (const GenerationRequest& bad : {Greedy(prompt, 600), Greedy({1, 99999}, 4), Greedy({}, 4)}) {
    auto s = engine->Submit(bad);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInternal) << s.status();
  }
}

// The queue limit counts requests that wait, not those about to run: a burst
// into an idle engine fills every running slot and then the queue (before,
// requests not yet picked up by the engine thread counted as queued, so only
// max_num_queued_requests of a burst got in). A request that could never fit
// is InvalidArgument (retrying cannot help), not ResourceExhausted.
TEST(EngineApi, QueueLimitCountsOnlyWaitingRequests) {
  EngineConfig c;
  c.options.max_num_seqs = 4;
  c.max_num_queued_requests = 2;
  auto engine = MakeEngine(testing::BundledModelDir(), c);
  const auto prompt = Goldens()["cases"][0]["prompt_token_ids"].get<std::vector<int32_t>>();

  GenerationRequest seven = Greedy(prompt, 400);
  seven.params.n = 7;
  auto never = engine->Submit(seven);
  ASSERT_FALSE(never.ok());
  EXPECT_EQ(never.status().code(), absl::StatusCode::kInvalidArgument) << never.status();
  EXPECT_NE(never.status().message().find("--max-num-queued-requests"), std::string::npos) << never.status();
  std::vector<GenerationRequest> seven_prompts(7, Greedy(prompt, 400));
  auto never_all = engine->SubmitAll(seven_prompts);
  ASSERT_FALSE(never_all.ok());
  EXPECT_EQ(never_all.status().code(), absl::StatusCode::kInvalidArgument) << never_all.status();

  // A burst of 6 single requests: 4 running + 2 waiting, all admitted.
  std::vector<std::unique_ptr<RequestHandle>> accepted;
  for (int i = 0; i < 6; ++i) {
    auto h = engine->Submit(Greedy(prompt, 400));
    ASSERT_TRUE(h.ok()) << "request " << i << " of the burst: " << h.status();
    accepted.push_back(std::move(*h));
  }
  auto seventh = engine->Submit(Greedy(prompt, 400));
  ASSERT_FALSE(seventh.ok());
  EXPECT_EQ(seventh.status().code(), absl::StatusCode::kResourceExhausted) << seventh.status();
  // All or nothing: two more prompts do not fit, and refusing them leaves
  // the accepted ones running.
  std::vector<GenerationRequest> two(2, Greedy(prompt, 400));
  auto full = engine->SubmitAll(two);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  std::vector<std::unique_ptr<RequestHandle>> first = std::move(accepted);
  const Collected done = Drain(*first.front());
  EXPECT_EQ(done.ids.size(), 400u);
  EXPECT_EQ(done.finish, FinishReason::kLength);
}

// First tokens of many seeded requests follow softmax(logits / T) after
// top-k, top-p and min-p, computed here independently in double precision
// from the model's next-token log-probabilities (log_softmax of the logits:
// the same distribution after any temperature), read over the whole
// vocabulary from a second engine with greedy probes.
TEST(EngineApi, SeededFirstTokensFollowTheFilteredSoftmax) {
  const auto prompt = Goldens()["cases"][2]["prompt_token_ids"].get<std::vector<int32_t>>();
  auto ref = MakeEngine(testing::BundledModelDir());
  ASSERT_NE(ref, nullptr);
  auto logprobs = testing::NextTokenLogprobs(*ref, prompt);
  ASSERT_TRUE(logprobs.ok()) << logprobs.status();
  ASSERT_EQ(logprobs->size(), 512u);
  const std::vector<double>& l = *logprobs;

  const double temperature = 2.5, top_p = 0.95, min_p = 0.02;
  const int top_k = 40;
  std::vector<int> order(l.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
  std::vector<double> p(l.size(), 0.0);
  double z = 0;
  for (int id : order) z += std::exp((l[id] - l[order[0]]) / temperature);
  for (int id : order) p[id] = std::exp((l[id] - l[order[0]]) / temperature) / z;
  // min_p (relative to the top probability) and top_k cut the candidates;
  // top_p then keeps the smallest prefix holding top_p of what is left.
  std::vector<int> candidates;
  double left = 0;
  for (int i = 0; i < top_k && p[order[i]] >= min_p * p[order[0]]; ++i) {
    candidates.push_back(order[i]);
    left += p[order[i]];
  }
  std::vector<int> kept;
  double mass = 0;
  for (int id : candidates) {
    kept.push_back(id);
    mass += p[id];
    if (mass >= top_p * left) break;
  }

  EngineConfig c;
  c.options.num_threads = 2;
  auto engine = MakeEngine(testing::BundledModelDir(), c);
  const int n = 3000;
  std::vector<std::unique_ptr<RequestHandle>> handles;
  for (int i = 0; i < n; ++i) {
    GenerationRequest r;
    r.prompt_ids = prompt;
    r.params.temperature = static_cast<float>(temperature);
    r.params.top_k = top_k;
    r.params.top_p = static_cast<float>(top_p);
    r.params.min_p = static_cast<float>(min_p);
    r.params.max_tokens = 1;
    r.params.seed = 1000 + i;
    auto h = engine->Submit(r);
    ASSERT_TRUE(h.ok()) << h.status();
    handles.push_back(std::move(*h));
  }
  std::map<int, int> counts;
  for (auto& h : handles) counts[Drain(*h).ids.at(0)]++;
  double chi2 = 0;
  for (int id : kept) {
    const double expected = n * p[id] / mass;
    chi2 += std::pow(counts[id] - expected, 2) / expected;
    counts.erase(id);
  }
  EXPECT_TRUE(counts.empty()) << "sampled a filtered-out token, e.g. " << counts.begin()->first;
  // 0.999 quantile of chi-square (Wilson-Hilferty), so a correct sampler
  // fails about once in a thousand seeds-sets; the seeds here are fixed.
  const double dof = static_cast<double>(kept.size() - 1);
  const double q = dof * std::pow(1 - 2 / (9 * dof) + 3.09 * std::sqrt(2 / (9 * dof)), 3);
  EXPECT_GT(kept.size(), 3u);
  EXPECT_LT(chi2, q) << "dof " << dof;
  std::cerr << "chi-square " << chi2 << " over " << kept.size() << " tokens (limit " << q << ")\n";
}

}  // namespace
}  // namespace kaon
