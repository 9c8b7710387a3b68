// The building blocks, checked against behaviour documented for HF tokenizers
// and Rust's standard library.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "server/tokenizer/pre_tokenizer.h"
#include "server/tokenizer/regex.h"
#include "server/tokenizer/tokenizer.h"
#include "server/tokenizer/unicode.h"
#include "server/common/utf8.h"
#include "tests/tokenizer/test_tokenizers.h"

namespace kaon {
namespace {

using nlohmann::json;

TEST(Utf8Test, LossyReplacesMaximalSubparts) {
  EXPECT_EQ(utf8::Lossy("abc"), "abc");
  EXPECT_EQ(utf8::Lossy("\xff"), "\uFFFD");
  EXPECT_EQ(utf8::Lossy("\xe2\x82"), "\uFFFD");        // truncated 3-byte sequence: one
  EXPECT_EQ(utf8::Lossy("\xe2\x82x"), "\uFFFDx");
  EXPECT_EQ(utf8::Lossy("\xed\xa0\x80"), "\uFFFD\uFFFD\uFFFD");  // surrogate: each byte
  EXPECT_EQ(utf8::Lossy("\xf0\x9f\x98"), "\uFFFD");
  EXPECT_EQ(utf8::Lossy("\xc0\xaf"), "\uFFFD\uFFFD");
  EXPECT_TRUE(utf8::IsValid("héllo 👋"));
  EXPECT_FALSE(utf8::IsValid("\xc3"));
  EXPECT_EQ(utf8::CompletePrefixLength("ab\xe4\xb8"), 2u);
  EXPECT_EQ(utf8::CompletePrefixLength("ab\xe4\xb8\xad"), 5u);
}

TEST(UnicodeTest, Nfc) {
  auto nfc = [](const std::string& s) {
    std::string out;
    return unicode::ToNfc(s, &out) ? out : s;
  };
  EXPECT_EQ(nfc("e\u0301"), "\u00e9");
  EXPECT_EQ(nfc("A\u0308"), "\u00c4");
  EXPECT_EQ(nfc("\u212b"), "\u00c5");                  // singleton decomposition
  EXPECT_EQ(nfc("\u1100\u1161\u11a8"), "\uac01");       // Hangul LVT
  EXPECT_EQ(nfc("q\u0307\u0323"), "q\u0323\u0307");     // reordering, no composite
  EXPECT_EQ(nfc("\u1e0b\u0323"), "\u1e0d\u0307");
  EXPECT_EQ(nfc("ascii only"), "ascii only");
  std::string out;
  EXPECT_FALSE(unicode::ToNfc("already é NFC 日本", &out));
}

TEST(RegexTest, WhitespaceIsUnicodeWhiteSpace) {
  auto re = Regex::Compile("\\s+");
  ASSERT_TRUE(re.ok());
  std::vector<std::pair<size_t, size_t>> m;
  // U+180E and U+200B are not White_Space; U+0085, U+00A0, U+3000 are.
  (*re)->FindAll("a\u180eb\u200bc", &m);
  EXPECT_TRUE(m.empty());
  (*re)->FindAll("a\u0085\u00a0\u3000b", &m);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0], std::make_pair(size_t{1}, size_t{1 + 2 + 2 + 3}));
  EXPECT_EQ(RewriteWhitespaceClasses("[^\\s\\p{L}]"),
            "[^\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
            "\\x{202F}\\x{205F}\\x{3000}\\p{L}]");
}

std::vector<std::string> PreTokenize(const json& spec, const std::string& text) {
  auto pt = ParsePreTokenizer(spec, "pre_tokenizer");
  EXPECT_TRUE(pt.ok()) << pt.status();
  std::vector<PreToken> tokens{{text, true}};
  (*pt)->Apply(tokens);
  std::vector<std::string> out;
  for (auto& t : tokens) out.push_back(t.text);
  return out;
}

TEST(PreTokenizerTest, SplitBehaviors) {
  auto split = [](const char* behavior, bool invert = false) {
    return PreTokenize({{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior},
                        {"invert", invert}},
                       "the-final--countdown");
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(split("Removed"), V({"the", "final", "countdown"}));
  EXPECT_EQ(split("Isolated"), V({"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split("MergedWithPrevious"), V({"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split("MergedWithNext"), V({"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split("Contiguous"), V({"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(split("Removed", true), V({"-", "-", "-"}));
}

TEST(PreTokenizerTest, MetaspaceAndByteLevel) {
  using V = std::vector<std::string>;
  EXPECT_EQ(PreTokenize({{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "always"},
                         {"split", true}},
                        "Hey friend!"),
            V({"\u2581Hey", "\u2581friend!"}));
  EXPECT_EQ(PreTokenize({{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "never"},
                         {"split", false}},
                        "Hey friend!"),
            V({"Hey\u2581friend!"}));
  EXPECT_EQ(PreTokenize({{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}},
                        "Hello my friend, how's it?"),
            V({"\u0120Hello", "\u0120my", "\u0120friend", ",", "\u0120how", "'s", "\u0120it", "?"}));
}

TEST(TokenizerFeaturesTest, ByteLevelBpe) {
  auto t = Tokenizer::FromJsonString(testing::ByteLevelTokenizerJson().dump(), "test.json");
  ASSERT_TRUE(t.ok()) << t.status();
  const Tokenizer& tok = **t;
  const int32_t hello = *tok.TokenToId("hello"), world = *tok.TokenToId(testing::ByteChars(" world"));
  EXPECT_EQ(tok.Encode("hello world", true), std::vector<int32_t>({300, hello, world}));
  EXPECT_EQ(tok.Encode("hello world", false), std::vector<int32_t>({hello, world}));
  // Special and non-special added tokens are both split out of raw text.
  EXPECT_EQ(tok.Encode("<think>hello<|eot|>", false), std::vector<int32_t>({302, hello, 301}));
  EXPECT_EQ(tok.Decode(std::vector<int32_t>{300, hello, 302, world, 301}, true), "hello<think> world");
  EXPECT_EQ(tok.Decode(std::vector<int32_t>{300, hello, 301}, false), "<|bos|>hello<|eot|>");
  EXPECT_TRUE(tok.IsSpecial(301));
  EXPECT_FALSE(tok.IsSpecial(302));
  EXPECT_EQ(tok.VocabSize(), 303);
  EXPECT_EQ(tok.Decode(tok.Encode("héllo 👋🏽\r\n\t 123456", false), false), "héllo 👋🏽\r\n\t 123456");
}

TEST(TokenizerFeaturesTest, AddedTokenStripping) {
  json j = testing::ByteLevelTokenizerJson();
  j["added_tokens"][1]["lstrip"] = true;
  j["added_tokens"][1]["rstrip"] = true;
  auto t = Tokenizer::FromJsonString(j.dump(), "test.json");
  ASSERT_TRUE(t.ok()) << t.status();
  const int32_t hello = *(*t)->TokenToId("hello");
  EXPECT_EQ((*t)->Encode("hello  <|eot|>  hello", false), std::vector<int32_t>({hello, 301, hello}));
}

TEST(TokenizerFeaturesTest, SingleWordAddedToken) {
  json j = testing::ByteLevelTokenizerJson();
  j["added_tokens"][2]["single_word"] = true;
  auto t = Tokenizer::FromJsonString(j.dump(), "test.json");
  ASSERT_TRUE(t.ok()) << t.status();
  const auto inside = (*t)->Encode("a<think>b", false);
  EXPECT_EQ(std::count(inside.begin(), inside.end(), 302), 0);
  const auto inside_unicode = (*t)->Encode("é<think>", false);
  EXPECT_EQ(std::count(inside_unicode.begin(), inside_unicode.end(), 302), 0);
  const auto apart = (*t)->Encode("a <think> b", false);
  EXPECT_EQ(std::count(apart.begin(), apart.end(), 302), 1);
}

TEST(TokenizerFeaturesTest, ConcurrentEncodeIsSafe) {
  auto t = Tokenizer::FromJsonString(testing::ByteLevelTokenizerJson().dump(), "test.json");
  ASSERT_TRUE(t.ok()) << t.status();
  const auto expected = (*t)->Encode("hello world, héllo wörld 123", true);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 500; ++k) {
        if ((*t)->Encode("hello world, héllo wörld 123", true) != expected) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace kaon
