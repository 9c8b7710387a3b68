// The CPU forward pass against independent references: stories260k's goldens
// from llama2.c (128 greedy ids, top-5 logits) and the tiny fixtures'
// references (numpy float64 and llama.cpp agree to ~1e-5). Paging must be
// real: block sizes 1 and 16, a scrambled free-block order and chunked
// prefill all give the same ids.
#include <cmath>
#include <fstream>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/engine/offline_engine.h"
#include "tests/common/test_paths.h"

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
  std::optional<uint64_t> shuffle_seed;
  int64_t max_num_batched_tokens;
};

const PagingVariant kVariants[] = {
    {"block16", 16, std::nullopt, 2048},
    {"block1_scrambled", 1, 12345, 2048},
    {"block16_scrambled", 16, 777, 2048},
    {"block4_chunked_prefill", 4, 99, 7},
};

std::unique_ptr<OfflineEngine> MakeEngine(const std::string& dir, const PagingVariant& v) {
  EngineOptions o;
  o.block_size = v.block_size;
  o.block_shuffle_seed = v.shuffle_seed;
  o.max_num_batched_tokens = v.max_num_batched_tokens;
  o.max_num_seqs = 4;
  o.num_threads = 2;
  auto engine = OfflineEngine::Create(dir, o);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? std::move(*engine) : nullptr;
}

GenerateRequest Greedy(const Json& prompt_ids, int64_t max_tokens, int64_t keep_logits) {
  GenerateRequest r;
  r.prompt_ids = prompt_ids.get<std::vector<int32_t>>();
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  r.sampling.temperature = 0.0f;
  r.keep_logits_steps = keep_logits;
  return r;
}

class Stories260kGolden : public ::testing::TestWithParam<PagingVariant> {};

TEST_P(Stories260kGolden, GreedyIdsAndTop5Logits) {
  const Json golden = ReadJson(testing::BundledModelDir() + "/golden.json");
  auto engine = MakeEngine(testing::BundledModelDir(), GetParam());
  ASSERT_NE(engine, nullptr);
  ASSERT_EQ(golden["cases"].size(), 6u);
  for (const Json& c : golden["cases"]) {
    SCOPED_TRACE(c["prompt"].get<std::string>());
    auto result = engine->Generate(Greedy(c["prompt_token_ids"], c["max_tokens"].get<int64_t>(), 3));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->token_ids, c["greedy_token_ids"].get<std::vector<int32_t>>());
    EXPECT_EQ(result->finish_reason, "length");
    if (!c.contains("top5_logits")) continue;
    for (const Json& step : c["top5_logits"]) {
      const auto& logits = result->logits.at(step["step"].get<size_t>());
      for (const Json& t : step["top5"]) {
        EXPECT_NEAR(logits.at(t["token_id"].get<size_t>()), t["logit"].get<double>(), 1e-3)
            << "step " << step["step"] << " token " << t["token_id"];
      }
    }
  }
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
  auto engine = MakeEngine(dir, GetParam().paging);
  ASSERT_NE(engine, nullptr);
  ASSERT_EQ(ref["cases"].size(), 4u);
  for (const Json& c : ref["cases"]) {
    SCOPED_TRACE(c["prompt_token_ids"].dump());
    const auto expected = c["greedy_token_ids"].get<std::vector<int32_t>>();
    auto result = engine->Generate(Greedy(c["prompt_token_ids"], static_cast<int64_t>(expected.size()), 3));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->token_ids, expected);
    const auto step0 = c["step0_logits"].get<std::vector<double>>();
    ASSERT_EQ(result->logits.at(0).size(), step0.size());
    double max_diff = 0;
    for (size_t i = 0; i < step0.size(); ++i) max_diff = std::max(max_diff, std::fabs(result->logits[0][i] - step0[i]));
    EXPECT_LT(max_diff, 1e-4);
    for (size_t s = 0; s < 3; ++s) {
      for (const Json& t : c["top5_logits_first3_steps"][s]) {
        EXPECT_NEAR(result->logits.at(s).at(t["id"].get<size_t>()), t["logit"].get<double>(), 1e-4)
            << "step " << s;
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
