#include "server/tokenizer/incremental_decoder.h"

#include <gtest/gtest.h>

#include <random>
#include <span>

#include "server/tokenizer/tokenizer.h"
#include "server/common/utf8.h"
#include "tests/common/test_paths.h"
#include "tests/tokenizer/test_tokenizers.h"

namespace kaon {
namespace {

const char* const kTexts[] = {
    "hello world",   "héllo wörld 👋🏽 世界!", "👨‍👩‍👧‍👦 family", "日本語のテキスト", " leading and trailing ",
    "a\n\nb\tc",     "<|bos|>x<|eot|>y",          "",               "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and ✨",       "Ünïcödé",
};

// Pushes ids one at a time, checking each piece is whole UTF-8, and returns
// the concatenation of all pieces.
std::string Stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip) {
  IncrementalDecoder dec(tok, skip);
  std::string all;
  for (int32_t id : ids) {
    const std::string piece = dec.Push(id);
    EXPECT_TRUE(utf8::IsValid(piece));
    EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << "partial character emitted";
    all += piece;
  }
  all += dec.Flush();
  return all;
}

std::unique_ptr<Tokenizer> Load(const std::string& json) {
  auto t = Tokenizer::FromJsonString(json, "test.json");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

TEST(IncrementalDecoderTest, ByteLevelMatchesDecode) {
  auto tok = Load(testing::ByteLevelTokenizerJson().dump());
  ASSERT_NE(tok, nullptr);
  for (const char* text : kTexts) {
    const auto ids = tok->Encode(text, true);
    for (bool skip : {false, true}) {
      EXPECT_EQ(Stream(*tok, ids, skip), tok->Decode(ids, skip)) << text;
    }
  }
}

TEST(IncrementalDecoderTest, ByteFallbackMatchesDecode) {
  auto t = Tokenizer::FromModelDir(testing::BundledModelDir());
  ASSERT_TRUE(t.ok()) << t.status();
  for (const char* text : kTexts) {
    const auto ids = (*t)->Encode(text, true);
    for (bool skip : {false, true}) {
      EXPECT_EQ(Stream(**t, ids, skip), (*t)->Decode(ids, skip)) << text;
    }
  }
}

TEST(IncrementalDecoderTest, HoldsBackPartialCharacters) {
  auto tok = Load(testing::ByteLevelTokenizerJson().dump());
  ASSERT_NE(tok, nullptr);
  // "é" is two byte tokens; nothing may come out after the first.
  IncrementalDecoder dec(*tok, false);
  EXPECT_EQ(dec.Push(0xC3), "");
  EXPECT_EQ(dec.Push(0xA9), "é");
  EXPECT_EQ(dec.Push(0xE4), "");
  EXPECT_EQ(dec.Flush(), "\uFFFD");
}

// Random bytes decode to U+FFFD in places; the stream must still add up.
TEST(IncrementalDecoderTest, RandomByteLevelIdsMatchDecode) {
  auto tok = Load(testing::ByteLevelTokenizerJson().dump());
  ASSERT_NE(tok, nullptr);
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<int32_t> ids(1 + rng() % 30);
    for (auto& id : ids) id = static_cast<int32_t>(rng() % 266);
    IncrementalDecoder dec(*tok, false);
    std::string all;
    for (int32_t id : ids) all += dec.Push(id);
    all += dec.Flush();
    EXPECT_EQ(all, tok->Decode(ids, false)) << "round " << round;
  }
}

// With context ids, the stream is the text after the context's text, with
// the leading space dropped only at the very start of the whole text.
TEST(IncrementalDecoderTest, ContextMatchesDecodeDifference) {
  auto t = Tokenizer::FromModelDir(testing::BundledModelDir());
  ASSERT_TRUE(t.ok()) << t.status();
  const Tokenizer& tok = **t;
  std::vector<int32_t> story = tok.Encode("Once upon a time", true);
  std::vector<int32_t> story_bos = story;
  story_bos.insert(story_bos.end(), {2, 1});
  for (const std::vector<int32_t>& context :
       {std::vector<int32_t>{}, std::vector<int32_t>{1}, story, story_bos}) {
    for (const char* text : kTexts) {
      const auto ids = tok.Encode(text, false);
      std::vector<int32_t> all = context;
      all.insert(all.end(), ids.begin(), ids.end());
      for (bool skip : {false, true}) {
        IncrementalDecoder dec(tok, context, skip);
        std::string streamed;
        for (int32_t id : ids) streamed += dec.Push(id);
        streamed += dec.Flush();
        const std::string head = tok.Decode(context, skip);
        const std::string full = tok.Decode(all, skip);
        ASSERT_EQ(full.compare(0, head.size(), head), 0);
        EXPECT_EQ(streamed, full.substr(head.size())) << text << " context " << context.size();
      }
    }
  }
}

// ByteFallback decodes a run of byte tokens as one: "<0x71>" alone is "q",
// but followed by an invalid "<0xE2>" both read as U+FFFD. Random ids over
// the stories vocabulary (half of it byte tokens, plus unknown ids that
// Decode skips inside a run), with random contexts, must still stream to
// exactly Decode's text (found by the tokenizer fuzzer).
TEST(IncrementalDecoderTest, RandomByteFallbackIdsMatchDecode) {
  auto t = Tokenizer::FromModelDir(testing::BundledModelDir());
  ASSERT_TRUE(t.ok()) << t.status();
  const Tokenizer& tok = **t;
  const int32_t q = *tok.TokenToId("<0x71>");
  const int32_t e2 = *tok.TokenToId("<0xE2>");
  {
    IncrementalDecoder dec(tok, false);
    std::string all = dec.Push(q);
    all += dec.Push(e2);
    all += dec.Flush();
    EXPECT_EQ(all, tok.Decode(std::vector<int32_t>{q, e2}, false));
  }
  std::mt19937 rng(11);
  const int32_t vocab = tok.VocabSize();
  for (int round = 0; round < 2000; ++round) {
    std::vector<int32_t> ids(1 + rng() % 24);
    for (auto& id : ids) {
      const uint32_t r = rng() % 16;
      // Mostly byte tokens (ids 3..258 in this vocabulary), some text, a few unknown.
      id = r < 10 ? static_cast<int32_t>(3 + rng() % 256) : r < 15 ? static_cast<int32_t>(rng() % vocab) : -1;
    }
    const size_t split = rng() % (ids.size() + 1);
    const std::span<const int32_t> context(ids.data(), split);
    for (bool skip : {false, true}) {
      IncrementalDecoder dec(tok, context, skip);
      std::string streamed;
      for (size_t i = split; i < ids.size(); ++i) {
        const std::string piece = dec.Push(ids[i]);
        EXPECT_TRUE(utf8::IsValid(piece));
        streamed += piece;
      }
      streamed += dec.Flush();
      const std::string head = tok.Decode(context, skip);
      const std::string full = tok.Decode(ids, skip);
      // Bytes after the context can turn its trailing U+FFFDs into text;
      // then there is no "difference" to compare with.
      if (full.compare(0, head.size(), head) != 0) continue;
      EXPECT_EQ(streamed, full.substr(head.size())) << "round " << round << " split " << split;
    }
  }
}

}  // namespace
}  // namespace kaon
