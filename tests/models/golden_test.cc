// The CPU forward pass, driven through the serving engine, against
// independent references: stories260k's goldens from llama2.c (128 greedy
// ids, top-5 logits) and the tiny fixtures' references (numpy float64 and
// llama.cpp agree to ~1e-5). Paging must be real: block sizes 1, 4 and 16, a
// scrambled free-block order and chunked prefill all give the same ids.
//
// The engine reports log-probabilities, not logits: log_softmax of the raw
// logits, i.e. the logits less one constant per step. Where a reference
// gives the whole logit row (the fixtures' step 0) it is compared through
// log_softmax over the whole vocabulary; where it gives a few logits only
// (stories260k's top 5) they are compared up to that one constant.
#include <cmath>
#include <fstream>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_isa.h"
#include "nlohmann/json.hpp"
#include "tests/common/test_paths.h"
#include "tests/engine/engine_test_util.h"
#include "tests/engine/next_token_logprobs.h"

namespace kaon {
namespace {

using Json = nlohmann::json;

Json ReadJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return Json::parse(in);
}

struct PagingVariant {
  const char* name;
  int64_t block_size;
  bool scrambled;  // churn the free-block queue before the checks (see ScrambleFreeBlocks)
  int64_t max_num_batched_tokens;
  // The CPU kernels' path (kernels/cpu/cpu_isa.h); a path this CPU lacks is
  // skipped. Every path must meet the same references.
  const char* cpu_isa = "auto";
};

const PagingVariant kVariants[] = {
    {"block16", 16, false, 2048},
    {"block1_scrambled", 1, true, 2048},
    {"block16_scrambled", 16, true, 2048},
    {"block4_chunked_prefill", 4, true, 7},
    {"block16_scalar", 16, false, 2048, "scalar"},
    {"block16_avx2", 16, false, 2048, "avx2"},
    {"block4_chunked_prefill_avx512", 4, true, 7, "avx512"},
};

// Scrambled variants get a KV cache of this many tokens (enough for the
// longest golden case, 128 ids after a prompt of under 64) so that the churn
// below cycles through every block.
constexpr int64_t kScrambledCacheTokens = 256;

// The KV manager hands out blocks from an LRU free queue that starts in id
// order, so a fresh engine gives a request ascending, contiguous blocks and a
// forward pass that mixed up logical and physical block indices would still
// pass. Requests of mixed lengths, run 4 at a time with their blocks
// allocated interleaved step by step (and preempted when the small cache
// fills), consume every block at least twice over; as they finish their
// blocks rejoin the queue, each request's last block first. The goldens then
// draw their blocks from that scrambled queue. Fixed seed: the same order
// every run.
void ScrambleFreeBlocks(Engine& engine) {
  std::mt19937_64 rng(20240611);
  const int32_t vocab = static_cast<int32_t>(engine.info().config.vocab_size);
  const int64_t capacity = engine.num_kv_blocks() * engine.block_size();
  std::vector<std::unique_ptr<RequestHandle>> handles;
  int64_t tokens = 0;
  while (tokens < 2 * capacity) {
    std::vector<int32_t> prompt(std::uniform_int_distribution<size_t>(1, 40)(rng));
    // Never BOS first, so no golden prompt hits these blocks in the prefix cache.
    for (int32_t& id : prompt) id = std::uniform_int_distribution<int32_t>(3, vocab - 1)(rng);
    const int64_t max_tokens = std::uniform_int_distribution<int64_t>(1, 40)(rng);
    tokens += static_cast<int64_t>(prompt.size()) + max_tokens;
    auto h = engine.Submit(testing::Greedy(std::move(prompt), max_tokens));
    ASSERT_TRUE(h.ok()) << h.status();
    handles.push_back(std::move(*h));
  }
  for (auto& h : handles) EXPECT_EQ(testing::Drain(*h).error, "");
}

bool CpuLacks(const PagingVariant& v) {
  kernels::cpu::CpuIsa isa;
  std::string error;
  return !kernels::cpu::ResolveCpuIsa(v.cpu_isa, kernels::cpu::DetectCpuIsaSupport(), &isa, &error);
}

std::unique_ptr<Engine> MakeEngine(const std::string& dir, const PagingVariant& v) {
  EngineConfig c;
  c.options.block_size = v.block_size;
  c.options.max_num_batched_tokens = v.max_num_batched_tokens;
  c.options.max_num_seqs = 4;
  c.options.num_threads = 2;
  c.options.cpu_isa = v.cpu_isa;
  if (v.scrambled) c.options.num_kv_blocks = kScrambledCacheTokens / v.block_size;
  std::unique_ptr<Engine> engine = testing::MakeEngine(dir, c);
  if (engine != nullptr && v.scrambled) ScrambleFreeBlocks(*engine);
  return engine;
}

struct Generated {
  std::vector<int32_t> ids;
  std::vector<SampleResult> steps;  // per generated token: its logprob and the top 20
  FinishReason finish = FinishReason::kNone;
  std::string error;
};

// Greedy, EOS ignored, with the top kMaxLogprobs alternatives at every step.
Generated Generate(Engine& engine, const Json& prompt_ids, int64_t max_tokens) {
  GenerationRequest r = testing::Greedy(prompt_ids.get<std::vector<int32_t>>(), max_tokens);
  r.params.logprobs = SamplingParams::kMaxLogprobs;
  Generated g;
  auto h = engine.Submit(std::move(r));
  if (!h.ok()) {
    g.error = std::string(h.status().message());
    return g;
  }
  while (auto ev = (*h)->Next()) {
    g.ids.insert(g.ids.end(), ev->token_ids.begin(), ev->token_ids.end());
    g.steps.insert(g.steps.end(), ev->logprobs.begin(), ev->logprobs.end());
    if (!ev->error.empty()) g.error = ev->error;
    if (ev->finished()) g.finish = ev->finish_reason;
  }
  return g;
}

// The engine's logprob of `id` among a step's alternatives, or NaN (which
// fails every EXPECT_NEAR) when it is not among them.
double AlternativeLogprob(const SampleResult& step, int32_t id) {
  for (const TokenLogprob& t : step.top) {
    if (t.token == id) return t.logprob;
  }
  ADD_FAILURE() << "token " << id << " is not among the step's " << step.top.size() << " alternatives";
  return std::nan("");
}

class Stories260kGolden : public ::testing::TestWithParam<PagingVariant> {};

TEST_P(Stories260kGolden, GreedyIdsAndTop5Logits) {
  if (CpuLacks(GetParam())) GTEST_SKIP() << "this CPU lacks --cpu-isa " << GetParam().cpu_isa;
  const Json golden = ReadJson(testing::BundledModelDir() + "/golden.json");
  auto engine = MakeEngine(testing::BundledModelDir(), GetParam());
  ASSERT_NE(engine, nullptr);
  ASSERT_EQ(golden["cases"].size(), 6u);
  int top5_cases = 0;
  for (const Json& c : golden["cases"]) {
    SCOPED_TRACE(c["prompt"].get<std::string>());
    const Generated g = Generate(*engine, c["prompt_token_ids"], c["max_tokens"].get<int64_t>());
    ASSERT_EQ(g.error, "");
    EXPECT_EQ(g.ids, c["greedy_token_ids"].get<std::vector<int32_t>>());
    EXPECT_EQ(g.finish, FinishReason::kLength);
    ASSERT_EQ(g.steps.size(), g.ids.size());
    if (!c.contains("top5_logits")) continue;
    ++top5_cases;
    for (const Json& step : c["top5_logits"]) {
      const size_t s = step["step"].get<size_t>();
      SCOPED_TRACE(::testing::Message() << "step " << s);
      // logprob = logit - logsumexp(logits): the step's constant is taken as
      // the mean offset over the five, then each logit must match.
      std::vector<std::pair<double, double>> pairs;  // (reference logit, engine logprob)
      for (const Json& t : step["top5"]) {
        pairs.emplace_back(t["logit"].get<double>(), AlternativeLogprob(g.steps.at(s), t["token_id"].get<int32_t>()));
      }
      ASSERT_EQ(pairs.size(), 5u);
      double offset = 0;
      for (const auto& [logit, logprob] : pairs) offset += (logit - logprob) / 5;
      for (size_t i = 0; i < pairs.size(); ++i) {
        EXPECT_NEAR(pairs[i].second + offset, pairs[i].first, 1e-3) << "top5 entry " << i;
      }
      // The greedy token is the top logit, and its reported logprob the top one.
      EXPECT_EQ(g.steps[s].top.front().token, step["top5"][0]["token_id"].get<int32_t>());
      EXPECT_EQ(g.steps[s].logprob, g.steps[s].top.front().logprob);
    }
  }
  EXPECT_EQ(top5_cases, 2);
}

INSTANTIATE_TEST_SUITE_P(Paging, Stories260kGolden, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

struct FixtureCase {
  const char* model;
  PagingVariant paging;
};

class TinyFixtureReference : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(TinyFixtureReference, GreedyIdsAndStep0Logits) {
  const std::string dir = testing::TestModelDir(GetParam().model);
  const Json ref = ReadJson(dir + "/reference.json");
  if (CpuLacks(GetParam().paging)) GTEST_SKIP() << "this CPU lacks --cpu-isa " << GetParam().paging.cpu_isa;
  auto engine = MakeEngine(dir, GetParam().paging);
  ASSERT_NE(engine, nullptr);
  ASSERT_EQ(ref["cases"].size(), 4u);
  for (const Json& c : ref["cases"]) {
    SCOPED_TRACE(c["prompt_token_ids"].dump());
    const auto expected = c["greedy_token_ids"].get<std::vector<int32_t>>();
    const Generated g = Generate(*engine, c["prompt_token_ids"], static_cast<int64_t>(expected.size()));
    ASSERT_EQ(g.error, "");
    EXPECT_EQ(g.ids, expected);
    ASSERT_EQ(g.steps.size(), expected.size());

    // Step 0 over the whole vocabulary: log_softmax of the reference's 512
    // logits (in double, here) against the engine's logprob of every id.
    const std::vector<double> want = testing::LogSoftmax(c["step0_logits"].get<std::vector<double>>());
    auto got = testing::NextTokenLogprobs(*engine, c["prompt_token_ids"].get<std::vector<int32_t>>());
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), want.size());
    double max_diff = 0;
    for (size_t i = 0; i < want.size(); ++i) max_diff = std::max(max_diff, std::fabs((*got)[i] - want[i]));
    EXPECT_LT(max_diff, 1e-4);
    // The generating request's own step 0 (the 20 alternatives it reports).
    EXPECT_NEAR(g.steps[0].logprob, want.at(expected[0]), 1e-4);
    ASSERT_EQ(g.steps[0].top.size(), static_cast<size_t>(SamplingParams::kMaxLogprobs));
    for (const TokenLogprob& t : g.steps[0].top) EXPECT_NEAR(t.logprob, want.at(t.token), 1e-4) << "id " << t.token;

    // Steps 0..2: the reference's top 5 with their log_softmax values.
    for (size_t s = 0; s < 3; ++s) {
      for (const Json& t : c["top5_logits_first3_steps"][s]) {
        EXPECT_NEAR(AlternativeLogprob(g.steps[s], t["id"].get<int32_t>()), t["logprob"].get<double>(), 1e-4)
            << "step " << s << " id " << t["id"];
      }
    }
  }
}

std::vector<FixtureCase> AllFixtureCases() {
  std::vector<FixtureCase> out;
  for (const char* m : {"tiny-llama3", "tiny-qwen2", "tiny-qwen2-sharded", "tiny-qwen3", "tiny-mistral"}) {
    for (const PagingVariant& v : kVariants) out.push_back({m, v});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TinyFixtureReference, ::testing::ValuesIn(AllFixtureCases()),
                         [](const auto& info) {
                           std::string n = std::string(info.param.model) + "_" + info.param.paging.name;
                           for (char& ch : n) {
                             if (ch == '-') ch = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace kaon
