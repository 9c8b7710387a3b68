// The bundled model's tokenizer against ids produced by HF tokenizers and
// llama2.c (models/stories260k/*golden.json).
#include <gtest/gtest.h>

#include "server/common/files.h"
#include "server/tokenizer/tokenizer.h"
#include "tests/common/test_paths.h"

namespace kaon {
namespace {

std::unique_ptr<Tokenizer> LoadBundled() {
  auto t = Tokenizer::FromModelDir(testing::BundledModelDir());
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

TEST(TokenizerGoldenTest, EveryTokenizerGoldenCase) {
  auto tok = LoadBundled();
  ASSERT_NE(tok, nullptr);
  auto golden = ReadJsonFile(testing::BundledModelDir() + "/tokenizer_golden.json");
  ASSERT_TRUE(golden.ok()) << golden.status();
  const auto& cases = (*golden)["cases"];
  ASSERT_GT(cases.size(), 20u);
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const std::vector<int32_t> ids = c["ids"];
    EXPECT_EQ(tok->Encode(text, true), ids) << "text: " << text;
    EXPECT_EQ(tok->Decode(ids, true), c["decoded"].get<std::string>()) << "text: " << text;
    std::vector<std::string> tokens;
    for (int32_t id : ids) tokens.push_back(tok->IdToToken(id));
    EXPECT_EQ(tokens, c["tokens"].get<std::vector<std::string>>()) << "text: " << text;
  }
}

TEST(TokenizerGoldenTest, PromptsAndGreedyText) {
  auto tok = LoadBundled();
  ASSERT_NE(tok, nullptr);
  auto golden = ReadJsonFile(testing::BundledModelDir() + "/golden.json");
  ASSERT_TRUE(golden.ok()) << golden.status();
  for (const auto& c : (*golden)["cases"]) {
    const std::string prompt = c["prompt"];
    const std::vector<int32_t> prompt_ids = c["prompt_token_ids"];
    EXPECT_EQ(tok->Encode(prompt, true), prompt_ids) << prompt;
    std::vector<int32_t> all = prompt_ids;
    const std::vector<int32_t> greedy = c["greedy_token_ids"];
    all.insert(all.end(), greedy.begin(), greedy.end());
    const std::string full = tok->Decode(all, true);
    const std::string head = tok->Decode(prompt_ids, true);
    ASSERT_EQ(full.compare(0, head.size(), head), 0) << prompt;
    EXPECT_EQ(full.substr(head.size()), c["greedy_text"].get<std::string>()) << prompt;
  }
}

TEST(TokenizerGoldenTest, VocabularyAndSpecialTokens) {
  auto tok = LoadBundled();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->VocabSize(), 512);
  EXPECT_EQ(tok->TokenToId("<s>"), 1);
  EXPECT_EQ(tok->TokenToId("</s>"), 2);
  EXPECT_EQ(tok->TokenToId("<0x0A>"), 13);
  EXPECT_FALSE(tok->TokenToId("no such token").has_value());
  EXPECT_EQ(tok->IdToToken(1), "<s>");
  EXPECT_EQ(tok->IdToToken(100000), "");
  EXPECT_TRUE(tok->IsSpecial(1));
  EXPECT_TRUE(tok->IsSpecial(2));
  EXPECT_FALSE(tok->IsSpecial(13));
  EXPECT_EQ(tok->config().bos_token, "<s>");
  EXPECT_EQ(tok->config().eos_token, "</s>");
  EXPECT_EQ(tok->config().add_bos_token, true);
  EXPECT_EQ(tok->config().model_max_length, 512);
  EXPECT_FALSE(tok->config().chat_template.has_value());
}

TEST(TokenizerGoldenTest, SpecialTokensSplitEvenWithoutAddingThem) {
  auto tok = LoadBundled();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->Encode("", true), std::vector<int32_t>({1}));
  EXPECT_EQ(tok->Encode("", false), std::vector<int32_t>());
  EXPECT_EQ(tok->Encode("<s>", false), std::vector<int32_t>({1}));
  EXPECT_EQ(tok->Decode(std::vector<int32_t>{1, 2}, false), "<s></s>");
  EXPECT_EQ(tok->Decode(std::vector<int32_t>{1, 2}, true), "");
  // Unknown ids are skipped, not an error.
  EXPECT_EQ(tok->Decode(std::vector<int32_t>{-5, 999999, 261}, true), "a");
}

TEST(TokenizerGoldenTest, InvalidUtf8DoesNotCrash) {
  auto tok = LoadBundled();
  ASSERT_NE(tok, nullptr);
  const std::string bad = "ok\xff\xfe\xc3(\xe2\x82";
  const auto ids = tok->Encode(bad, true);
  // Invalid bytes are replaced by U+FFFD, which byte-falls back.
  EXPECT_EQ(tok->Decode(ids, true), "ok\uFFFD\uFFFD\uFFFD(\uFFFD");
}

}  // namespace
}  // namespace kaon
