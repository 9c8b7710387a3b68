// Long words: cutting SentencePiece-style words at "▁" (metaspace_split.h)
// and the bucketed merge loop (bpe_merge.h) must give exactly the ids of the
// plain heap loop over the whole word, and the cut must be refused wherever
// it could change them.
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/common/files.h"
#include "server/tokenizer/bpe_model.h"
#include "server/tokenizer/tokenizer.h"
#include "tests/common/test_paths.h"
#include "tests/tokenizer/test_tokenizers.h"

namespace kaon {
namespace {

using Merges = std::vector<std::pair<std::string, std::string>>;
constexpr char kMarker[] = "\xE2\x96\x81";

std::unique_ptr<BpeModel> Load(const nlohmann::json& model) {
  auto m = BpeModel::FromJson(model, "model");
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

// A SentencePiece-style model: "<unk>", the 256 byte tokens, "▁" and a few
// characters, and `merges` (their results added to the vocabulary).
nlohmann::json SentencePieceModel(const Merges& merges) {
  nlohmann::json vocab = nlohmann::json::object();
  int next = 0;
  auto add = [&](const std::string& token) {
    if (!vocab.contains(token)) vocab[token] = next++;
  };
  add("<unk>");
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    add(name);
  }
  for (const char* c : {kMarker, "a", "b", "c", "x", "y", "<", ">", "/", "."}) add(c);
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [a, b] : merges) {
    add(a);
    add(b);
    add(a + b);
    list.push_back(a + " " + b);
  }
  return nlohmann::json{{"type", "BPE"},       {"dropout", nullptr},       {"unk_token", "<unk>"},
                        {"fuse_unk", true},    {"byte_fallback", true},    {"ignore_merges", false},
                        {"vocab", vocab},      {"merges", list}};
}

// Merges of a SentencePiece vocabulary: words start with "▁", runs of "▁"
// merge, ">▁<" joins across words.
const Merges kWordMerges = {{kMarker, "a"},         {"a", "b"},           {kMarker, kMarker},
                            {std::string(kMarker) + "a", "b"}, {"x", "y"}, {kMarker, "x"},
                            {"<", "/"},             {"c", "."},           {std::string(kMarker) + kMarker, kMarker},
                            {"b", "c"},             {"a", "bc"}};

// Random text in the model's characters, with unknown, byte-fallback and
// control characters.
std::string RandomWord(std::mt19937& rng, size_t n) {
  static const char* kPieces[] = {kMarker, kMarker, kMarker, "a", "b", "c", "x", "y", "<", ">", "/",
                                  ".", "ab", "\xF0\x9F\x98\x80", "\x01", "\t", "\n", "z", "\xE4\xB8\x80"};
  std::string s;
  while (s.size() < n) s += kPieces[rng() % (sizeof kPieces / sizeof *kPieces)];
  return s;
}

void ExpectCutChangesNothing(const BpeModel& m, const std::string& word) {
  std::vector<int32_t> cut, heap, bucketed;
  m.Tokenize(word, cut);
  m.TokenizeUncut(word, BpeModel::MergeLoop::kHeap, heap);
  m.TokenizeUncut(word, BpeModel::MergeLoop::kBucketed, bucketed);
  EXPECT_EQ(cut, heap) << "word of " << word.size() << " bytes";
  EXPECT_EQ(bucketed, heap) << "word of " << word.size() << " bytes";
}

TEST(TokenizerLongWord, BundledModelTakesTheCutWithIdenticalIds) {
  auto json = ReadJsonFile(testing::BundledModelDir() + "/tokenizer.json");
  ASSERT_TRUE(json.ok()) << json.status();
  std::unique_ptr<BpeModel> m = Load(nlohmann::json::parse((*json)["model"].dump()));
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->SplitsAtMetaspace());

  auto tok = Tokenizer::FromModelDir(testing::BundledModelDir());
  ASSERT_TRUE(tok.ok()) << tok.status();
  std::mt19937 rng(7);
  static const char* kWords[] = {"Once", "upon", "a", "time", "there", "was", "little", "girl", "named",
                                 "Lily", "\xE2\x96\x81", "caf\xC3\xA9", "\xF0\x9F\x98\x80", "\x01", "\x7F",
                                 "\xE6\x97\xA5\xE6\x9C\xAC", "zzzzzzzzzzzz"};
  static const char* kBreaks[] = {" ", " ", " ", "  ", "   ", "\n", "\t", ". ", "", " \n "};
  std::string text = "  ";
  while (text.size() < 300000) {
    text += kWords[rng() % (sizeof kWords / sizeof *kWords)];
    text += kBreaks[rng() % (sizeof kBreaks / sizeof *kBreaks)];
  }
  text += "   ";
  // What the bundled normalizer makes of it: Prepend("▁"), Replace(" ", "▁").
  std::string word = kMarker;
  for (char c : text) {
    if (c == ' ') {
      word += kMarker;
    } else {
      word.push_back(c);
    }
  }
  ExpectCutChangesNothing(*m, word);
  std::vector<int32_t> cut;
  m->Tokenize(word, cut);
  EXPECT_EQ((*tok)->Encode(text, false), cut);
}

TEST(TokenizerLongWord, CutIsExactOnRandomWords) {
  std::unique_ptr<BpeModel> m = Load(SentencePieceModel(kWordMerges));
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->SplitsAtMetaspace());
  std::mt19937 rng(1);
  for (int i = 0; i < 300; ++i) ExpectCutChangesNothing(*m, RandomWord(rng, 1 + rng() % 64));
  for (int i = 0; i < 10; ++i) ExpectCutChangesNothing(*m, RandomWord(rng, 10000 + rng() % 50000));
}

// The cut is refused where a merge could join across it, or where the
// model's options make pieces merge differently from the whole word.
TEST(TokenizerLongWord, CutRefusedWhereItCouldChangeIds) {
  auto refused = [](nlohmann::json model, const char* why) {
    std::unique_ptr<BpeModel> m = Load(model);
    ASSERT_NE(m, nullptr) << why;
    EXPECT_FALSE(m->SplitsAtMetaspace()) << why;
  };
  const std::string marker = kMarker;
  Merges after_unk = kWordMerges;
  after_unk.emplace_back("<unk>", marker + "a");
  refused(SentencePieceModel(after_unk), "the unknown token can end the left piece");
  Merges after_byte = kWordMerges;
  after_byte.emplace_back("<0x01>", marker + "a");
  refused(SentencePieceModel(after_byte), "a byte token can end the left piece");

  nlohmann::json model = SentencePieceModel(kWordMerges);
  model["ignore_merges"] = true;
  refused(model, "ignore_merges");
  // (No merges: with a prefix, these would not parse.)
  model = SentencePieceModel({});
  model["continuing_subword_prefix"] = "##";
  refused(model, "continuing_subword_prefix");
  model = SentencePieceModel({});
  model["end_of_word_suffix"] = "</w>";
  refused(model, "end_of_word_suffix");
  model = SentencePieceModel(kWordMerges);
  model["unk_token"] = nullptr;
  model["byte_fallback"] = false;
  refused(model, "characters without a symbol");
  model = SentencePieceModel(kWordMerges);
  model["vocab"]["q" + marker] = model["vocab"].size();
  model["unk_token"] = "q" + marker;
  refused(model, "the unknown token ends with the marker");
  model = SentencePieceModel(kWordMerges);
  model["vocab"]["also a"] = model["vocab"]["a"];
  refused(model, "two tokens share an id");
  model = SentencePieceModel({{"a", "b"}});
  model["vocab"].erase(marker);
  refused(model, "no \"▁\" token");
}

TEST(TokenizerLongWord, CutKeptWhereTheModelAllowsIt) {
  const std::string marker = kMarker;
  // Gemma 3 lists ">" "▁</": no cut after ">", cuts elsewhere.
  Merges gemma = kWordMerges;
  gemma.emplace_back(marker, "</");
  gemma.emplace_back(">", marker + "</");
  std::unique_ptr<BpeModel> m = Load(SentencePieceModel(gemma));
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->SplitsAtMetaspace());
  std::vector<int32_t> ids;
  m->Tokenize("a>" + marker + "</b", ids);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(*m->IdToToken(ids[1]), ">" + marker + "</");
  std::mt19937 rng(2);
  for (int i = 0; i < 300; ++i) ExpectCutChangesNothing(*m, RandomWord(rng, 1 + rng() % 64));
  for (int i = 0; i < 5; ++i) ExpectCutChangesNothing(*m, RandomWord(rng, 20000));

  // A merge of "b" and "▁x": no cut after "b", which the random words check.
  Merges across = kWordMerges;
  across.emplace_back("b", marker + "x");
  m = Load(SentencePieceModel(across));
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->SplitsAtMetaspace());
  for (int i = 0; i < 300; ++i) ExpectCutChangesNothing(*m, RandomWord(rng, 1 + rng() % 64));

  // "x▁y" as a merge result is harmless when "x▁" can never form.
  Merges unreachable = kWordMerges;
  unreachable.emplace_back("x" + marker, "y");
  m = Load(SentencePieceModel(unreachable));
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->SplitsAtMetaspace());
  ExpectCutChangesNothing(*m, "x" + marker + "y" + marker + "x" + marker + marker + "y");

  // Byte fallback alone (no unknown token) gives every character a symbol.
  nlohmann::json model = SentencePieceModel(kWordMerges);
  model["unk_token"] = nullptr;
  m = Load(model);
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->SplitsAtMetaspace());
  for (int i = 0; i < 100; ++i) ExpectCutChangesNothing(*m, RandomWord(rng, 1 + rng() % 200));
}

// Hand-written merges where a merge forms a pair of lower rank than its own
// (the bucketed loop's out-of-order heap), and two pairs merge into the same
// token (HF applies a stale pop when the result matches).
TEST(TokenizerLongWord, BucketedLoopMatchesHeapOnOutOfOrderMerges) {
  const Merges merges = {{"ab", "a"}, {"ab", "ab"}, {"c", "ab"}, {"bc", "a"},   {"a", "b"},   {"b", "c"},
                         {"ca", "b"}, {"c", "a"},   {"ab", "c"}, {"abc", "abc"}, {"a", "bc"}, {"x", "a"},
                         {"y", "y"},  {"yy", "y"},  {"c", "c"}};
  nlohmann::json model = SentencePieceModel(merges);
  std::unique_ptr<BpeModel> m = Load(model);
  ASSERT_NE(m, nullptr);
  std::mt19937 rng(3);
  for (int i = 0; i < 400; ++i) {
    std::string word;
    const size_t n = i < 300 ? 1 + rng() % 40 : 5000 + rng() % 20000;
    const std::string alphabet = i % 2 ? "abc" : "abcxy";
    while (word.size() < n) word += alphabet[rng() % alphabet.size()];
    std::vector<int32_t> heap, bucketed, plain;
    m->TokenizeUncut(word, BpeModel::MergeLoop::kHeap, heap);
    m->TokenizeUncut(word, BpeModel::MergeLoop::kBucketed, bucketed);
    m->Tokenize(word, plain);
    ASSERT_EQ(bucketed, heap) << word.substr(0, 80);
    ASSERT_EQ(plain, heap) << word.substr(0, 80);
  }
}

TEST(TokenizerLongWord, BucketedLoopMatchesHeapOnByteLevelWords) {
  std::unique_ptr<BpeModel> m = Load(testing::ByteLevelTokenizerJson()["model"]);
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(m->SplitsAtMetaspace());
  std::mt19937 rng(4);
  for (int i = 0; i < 20; ++i) {
    std::string word;
    while (word.size() < 8000) word += testing::ByteChars(i % 2 ? "hello" : std::string(1, "helowrd "[rng() % 8]));
    std::vector<int32_t> heap, bucketed;
    m->TokenizeUncut(word, BpeModel::MergeLoop::kHeap, heap);
    m->TokenizeUncut(word, BpeModel::MergeLoop::kBucketed, bucketed);
    ASSERT_EQ(bucketed, heap);
  }
}

}  // namespace
}  // namespace kaon
