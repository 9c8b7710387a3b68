// Dataset sampling: vLLM's random length ranges, exact prompt lengths with a
// local tokenizer, ShareGPT's filters, shared prefixes, prompts files.
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "bench/kaon_bench/dataset.h"
#include "gtest/gtest.h"
#include "tests/common/test_paths.h"

namespace kaon::bench {
namespace {

std::string TempFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

using Range = std::pair<int64_t, int64_t>;

TEST(KaonBenchRandomLengthRange, UniformAroundLikeVllm) {
  EXPECT_EQ(RandomLengthRange(100, 0.25, false), Range(75, 125));
  EXPECT_EQ(RandomLengthRange(10, 0.0, false), Range(10, 10));
  EXPECT_EQ(RandomLengthRange(7, 0.5, false), Range(3, 11));  // floor 3.5, ceil 10.5
  EXPECT_EQ(RandomLengthRange(1, 0.9, true), Range(1, 2));    // output at least 1
}

TEST(KaonBenchRandomDataset, LengthsStayInRangeAndSpreadOut) {
  auto counter = MakeWordTokenCounter();
  DatasetOptions o;
  o.num_prompts = 400;
  o.random_input_len = 40;
  o.random_output_len = 20;
  o.random_range_ratio = 0.5;
  o.seed = 3;
  const auto reqs = BuildDataset(o, *counter);
  ASSERT_EQ(reqs.size(), 400u);
  std::set<int64_t> in_lens, out_lens;
  double out_sum = 0;
  for (const auto& r : reqs) {
    EXPECT_GE(r.prompt_len, 20);
    EXPECT_LE(r.prompt_len, 60);
    EXPECT_GE(r.output_len, 10);
    EXPECT_LE(r.output_len, 30);
    in_lens.insert(r.prompt_len);
    out_lens.insert(r.output_len);
    out_sum += static_cast<double>(r.output_len);
  }
  EXPECT_EQ(in_lens.size(), 41u);   // every length in [20, 60] drawn at least once
  EXPECT_EQ(out_lens.size(), 21u);
  EXPECT_NEAR(out_sum / 400, 20, 1.0);  // uniform: mean at the centre
  // Same seed, same prompts.
  const auto again = BuildDataset(o, *counter);
  EXPECT_EQ(again[17].prompt, reqs[17].prompt);
  o.random_range_ratio = 1.0;
  EXPECT_THROW(BuildDataset(o, *counter), std::runtime_error);
}

TEST(KaonBenchRandomDataset, ExactLengthsWithLocalTokenizer) {
  auto counter = MakeLocalTokenCounter(kaon::testing::BundledModelDir());
  DatasetOptions o;
  o.num_prompts = 30;
  o.random_input_len = 32;
  o.random_output_len = 8;
  const auto reqs = BuildDataset(o, *counter);
  for (const auto& r : reqs) {
    EXPECT_EQ(r.prompt_len, 32) << r.prompt;
    EXPECT_EQ(counter->Count(r.prompt), 32);
    EXPECT_EQ(r.output_len, 8);
  }
}

TEST(KaonBenchShareGpt, FirstTurnIsThePromptAndFiltersApply) {
  // Word counter: one token per word.
  const std::string path = TempFile("sharegpt.json", R"([
    {"conversations": [{"from": "human", "value": "one two three four five"},
                       {"from": "gpt", "value": "a b c d e f"}]},
    {"conversations": [{"from": "human", "value": "too short"}, {"from": "gpt", "value": "a b c d e"}]},
    {"conversations": [{"from": "human", "value": "w x y z"}, {"from": "gpt", "value": "tiny"}]},
    {"conversations": [{"from": "human", "value": "only one turn here"}]},
    {"conversations": [{"from": "human", "value": "alpha beta gamma delta"},
                       {"from": "gpt", "value": "1 2 3 4 5 6 7 8"}]}
  ])");
  auto counter = MakeWordTokenCounter();
  DatasetOptions o;
  o.name = "sharegpt";
  o.path = path;
  o.num_prompts = 10;
  auto reqs = BuildDataset(o, *counter);
  std::map<std::string, int64_t> got;
  for (const auto& r : reqs) got[r.prompt] = r.output_len;
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got.at("one two three four five"), 6);
  EXPECT_EQ(got.at("alpha beta gamma delta"), 8);
  // A fixed output length skips the output-length filter.
  o.sharegpt_output_len = 3;
  reqs = BuildDataset(o, *counter);
  EXPECT_EQ(reqs.size(), 3u);
  for (const auto& r : reqs) EXPECT_EQ(r.output_len, 3);
}

TEST(KaonBenchPrefixRepetition, PromptsShareTheirPrefixes) {
  auto counter = MakeWordTokenCounter();
  DatasetOptions o;
  o.name = "prefix-repetition";
  o.num_prompts = 12;
  o.num_prefixes = 3;
  o.prefix_len = 10;
  o.suffix_len = 5;
  o.prefix_output_len = 7;
  const auto reqs = BuildDataset(o, *counter);
  ASSERT_EQ(reqs.size(), 12u);
  std::map<std::string, int> prefixes;
  for (const auto& r : reqs) {
    EXPECT_EQ(r.prompt_len, 15);
    EXPECT_EQ(r.output_len, 7);
    // The first 10 words are the shared prefix.
    size_t pos = 0;
    for (int w = 0; w < 10; ++w) pos = r.prompt.find(' ', pos) + 1;
    ++prefixes[r.prompt.substr(0, pos)];
  }
  EXPECT_EQ(prefixes.size(), 3u);
  for (const auto& [p, n] : prefixes) EXPECT_EQ(n, 4);
}

TEST(KaonBenchCustom, JsonLinesAndPlainLines) {
  const std::string path = TempFile("prompts.jsonl",
                                    "{\"prompt\": \"hello there\", \"output_len\": 5}\n"
                                    "a plain line of text\n"
                                    "\n"
                                    "{\"prompt\": \"third\"}\n");
  auto counter = MakeWordTokenCounter();
  DatasetOptions o;
  o.name = "custom";
  o.path = path;
  o.num_prompts = 4;
  o.custom_output_len = 9;
  const auto reqs = BuildDataset(o, *counter);
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[0].prompt, "hello there");
  EXPECT_EQ(reqs[0].output_len, 5);
  EXPECT_EQ(reqs[0].prompt_len, 2);
  EXPECT_EQ(reqs[1].prompt, "a plain line of text");
  EXPECT_EQ(reqs[1].output_len, 9);
  EXPECT_EQ(reqs[2].prompt, "third");
  EXPECT_EQ(reqs[3].prompt, "hello there");  // cycles
  o.path = "/nonexistent/prompts";
  EXPECT_THROW(BuildDataset(o, *counter), std::runtime_error);
  o.name = "nope";
  EXPECT_THROW(BuildDataset(o, *counter), std::runtime_error);
}

}  // namespace
}  // namespace kaon::bench
