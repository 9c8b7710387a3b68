// Batch invariance on the CPU backend: a greedy request's tokens are
// identical, and its logprobs within 1e-5, alone, batched with 31 others of
// mixed lengths, under chunked prefill, after a prefix-cache hit, and after
// preemption and recompute. Seeded sampling is reproducible the same ways.
#include <fstream>
#include <random>

#include "nlohmann/json.hpp"
#include "tests/common/test_paths.h"
#include "tests/engine/engine_test_util.h"

namespace kaon {
namespace {

using testing::Collected;
using testing::Drain;
using testing::Greedy;
using testing::MakeEngine;

struct Target {
  std::string dir;
  std::vector<int32_t> prompt;
  std::vector<int32_t> reference;  // independent greedy ids (first 32)
};

Target LoadTarget(const std::string& model) {
  Target t;
  if (model == "stories260k") {
    t.dir = testing::BundledModelDir();
    auto g = nlohmann::json::parse(std::ifstream(t.dir + "/golden.json"));
    t.prompt = g["cases"][3]["prompt_token_ids"].get<std::vector<int32_t>>();
    t.reference = g["cases"][3]["greedy_token_ids"].get<std::vector<int32_t>>();
  } else {
    t.dir = testing::TestModelDir(model);
    auto r = nlohmann::json::parse(std::ifstream(t.dir + "/reference.json"));
    t.prompt = r["cases"][3]["prompt_token_ids"].get<std::vector<int32_t>>();
    t.reference = r["cases"][3]["greedy_token_ids"].get<std::vector<int32_t>>();
  }
  t.reference.resize(32);
  return t;
}

constexpr int64_t kMaxTokens = 32;

void ExpectSame(const Collected& got, const Collected& want, const char* what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(got.error, "");
  EXPECT_EQ(got.ids, want.ids);
  ASSERT_EQ(got.logprobs.size(), want.logprobs.size());
  for (size_t i = 0; i < got.logprobs.size(); ++i) EXPECT_NEAR(got.logprobs[i], want.logprobs[i], 1e-5) << i;
}

// Submits the target among `others` random requests (mixed lengths, some
// sampled), all at once, and returns the target's output.
Collected RunInBatch(Engine& engine, const Target& t, int others, uint64_t seed,
                     const std::optional<SamplingParams>& target_params = std::nullopt) {
  std::mt19937_64 rng(seed);
  std::vector<std::unique_ptr<RequestHandle>> handles;
  std::unique_ptr<RequestHandle> target;
  for (int i = 0; i <= others; ++i) {
    if (i == others / 2) {
      GenerationRequest r = Greedy(t.prompt, kMaxTokens);
      if (target_params) r.params = *target_params;
      auto h = engine.Submit(std::move(r));
      EXPECT_TRUE(h.ok()) << h.status();
      target = std::move(*h);
      continue;
    }
    const int len = std::uniform_int_distribution<int>(1, 80)(rng);
    std::vector<int32_t> prompt(len);
    for (int32_t& id : prompt) id = std::uniform_int_distribution<int32_t>(3, 511)(rng);
    GenerationRequest r = Greedy(prompt, std::uniform_int_distribution<int64_t>(1, 40)(rng));
    if (i % 3 == 0) {
      r.params.temperature = 0.9f;
      r.params.seed = rng();
    }
    auto h = engine.Submit(std::move(r));
    EXPECT_TRUE(h.ok()) << h.status();
    handles.push_back(std::move(*h));
  }
  Collected c = Drain(*target);
  for (auto& h : handles) EXPECT_EQ(Drain(*h).error, "");
  return c;
}

class BatchInvariance : public ::testing::TestWithParam<const char*> {};

TEST_P(BatchInvariance, GreedyTokensAndLogprobs) {
  const Target t = LoadTarget(GetParam());
  auto alone_engine = MakeEngine(t.dir);
  ASSERT_NE(alone_engine, nullptr);
  auto h = alone_engine->Submit(Greedy(t.prompt, kMaxTokens));
  ASSERT_TRUE(h.ok()) << h.status();
  const Collected alone = Drain(**h);
  EXPECT_EQ(alone.ids, t.reference);
  ASSERT_EQ(alone.logprobs.size(), static_cast<size_t>(kMaxTokens));

  {
    auto engine = MakeEngine(t.dir);
    ExpectSame(RunInBatch(*engine, t, 31, 1), alone, "batched with 31 others");
    const EngineStats s = engine->stats();
    // One forward pass per step, covering exactly the scheduled tokens.
    EXPECT_GT(s.num_steps, 0);
    EXPECT_EQ(s.num_forward_calls, s.num_steps);
    EXPECT_EQ(s.num_forward_tokens, s.num_scheduled_tokens);
  }
  for (int64_t chunk : {7, 16, 33}) {
    EngineConfig c;
    c.options.max_num_batched_tokens = chunk;
    auto engine = MakeEngine(t.dir, c);
    ExpectSame(RunInBatch(*engine, t, 7, 2), alone, "chunked prefill");
  }
  {
    auto engine = MakeEngine(t.dir);
    auto first = engine->Submit(Greedy(t.prompt, kMaxTokens));
    ASSERT_TRUE(first.ok());
    Drain(**first);
    auto second = engine->Submit(Greedy(t.prompt, kMaxTokens));
    ASSERT_TRUE(second.ok());
    const Collected hit = Drain(**second);
    ExpectSame(hit, alone, "after a prefix-cache hit");
    EXPECT_GT(hit.usage.cached_tokens, 0);
    EXPECT_GT(engine->stats().prefix_cache_hits, 0);
  }
  {
    // 40 blocks of 4 tokens cannot hold 8 requests of ~80 tokens at once.
    EngineConfig c;
    c.options.block_size = 4;
    c.options.num_kv_blocks = 40;
    auto engine = MakeEngine(t.dir, c);
    ExpectSame(RunInBatch(*engine, t, 7, 3), alone, "after preemption");
    EXPECT_GT(engine->stats().num_preemptions, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, BatchInvariance, ::testing::Values("stories260k", "tiny-qwen3"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n) {
                             if (ch == '-') ch = '_';
                           }
                           return n;
                         });

TEST(Seeds, SameSeedSameTokensEverywhere) {
  const Target t = LoadTarget("stories260k");
  SamplingParams p;
  p.temperature = 0.8f;
  p.top_p = 0.95f;
  p.seed = 1234;
  p.max_tokens = kMaxTokens;
  p.ignore_eos = true;
  p.logprobs = 0;
  auto alone_engine = MakeEngine(t.dir);
  GenerationRequest r;
  r.prompt_ids = t.prompt;
  r.params = p;
  const Collected alone = Drain(**alone_engine->Submit(r));
  ASSERT_EQ(alone.ids.size(), static_cast<size_t>(kMaxTokens));

  auto batch_engine = MakeEngine(t.dir);
  ExpectSame(RunInBatch(*batch_engine, t, 31, 5, p), alone, "seeded, batch of 32");

  EngineConfig c;
  c.options.block_size = 4;
  c.options.num_kv_blocks = 40;
  auto tight_engine = MakeEngine(t.dir, c);
  ExpectSame(RunInBatch(*tight_engine, t, 7, 6, p), alone, "seeded, after preemption");
  EXPECT_GT(tight_engine->stats().num_preemptions, 0);

  r.params.seed = 4321;
  EXPECT_NE(Drain(**alone_engine->Submit(r)).ids, alone.ids);
}

}  // namespace
}  // namespace kaon
