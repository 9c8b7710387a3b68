// Tokenizers: arbitrary bytes -> Encode (with and without special tokens),
// Decode of the result and of ids read from the bytes (out-of-range and
// negative ids included: Decode skips unknown ids), and the incremental
// decoder, for each tokenizer family the repo's test data has:
//   - stories260k (models/, and every tests/data/models fixture shares it):
//     SentencePiece-style BPE (Prepend/Replace normalizer, byte fallback);
//   - the Llama 3 style byte-level BPE with the Llama 3 split regex and
//     special/added tokens that tests/tokenizer/test_tokenizers.h builds.
//
// Input: byte 0 holds options (bit 0: skip_special_tokens for decoding;
// bit 1: the tokenizer; bits 2-7: where the ids split into context and
// pushed ids); the rest is the text, also read as little-endian 16-bit ids.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "server/common/utf8.h"
#include "server/tokenizer/incremental_decoder.h"
#include "server/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/tokenizer/test_tokenizers.h"

namespace {

struct Loaded {
  std::unique_ptr<kaon::Tokenizer> tok;
  // Byte-level BPE maps every byte to a token and its decoder maps them back,
  // so valid UTF-8 text must decode to itself (HF's documented behaviour).
  bool byte_level_round_trip = false;
};

const std::vector<Loaded>& Tokenizers() {
  static const std::vector<Loaded>* all = [] {
    auto* v = new std::vector<Loaded>;
    auto stories = kaon::Tokenizer::FromModelDir(kaon::fuzz::SourceDir() + "/models/stories260k");
    if (!stories.ok()) kaon::fuzz::SetupFailed(std::string(stories.status().message()));
    v->push_back({std::move(*stories), /*byte_level_round_trip=*/false});
    auto byte_level = kaon::Tokenizer::FromJsonString(kaon::testing::ByteLevelTokenizerJson().dump(), "byte-level");
    if (!byte_level.ok()) kaon::fuzz::SetupFailed(std::string(byte_level.status().message()));
    v->push_back({std::move(*byte_level), /*byte_level_round_trip=*/true});
    return v;
  }();
  return *all;
}

// Ids spread a little past both ends of the vocabulary, so unknown ids
// (negative, just past the end) are common but most ids are real.
std::vector<int32_t> IdsFromBytes(std::string_view bytes, int32_t vocab) {
  std::vector<int32_t> ids;
  // Every pushed id costs the incremental decoder two Decode calls: bound
  // them so long inputs stay cheap (the text is still encoded whole).
  constexpr size_t kMaxIds = 256;
  for (size_t i = 0; i + 1 < bytes.size() && ids.size() < kMaxIds; i += 2) {
    const uint32_t v = static_cast<uint8_t>(bytes[i]) | (static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8);
    ids.push_back(static_cast<int32_t>(v % static_cast<uint32_t>(vocab + 16)) - 8);
  }
  return ids;
}

// The longest run of ids that are byte-fallback tokens ("<0xHH>") or never
// reach the decoder (unknown, skipped special): the incremental decoder holds
// such a run back only up to 64 tokens (incremental_decoder.h).
size_t LongestByteRun(const kaon::Tokenizer& tok, std::span<const int32_t> ids, bool skip) {
  size_t run = 0, longest = 0;
  for (int32_t id : ids) {
    const std::string* t = tok.DecodeToken(id, skip);
    const bool byte = t == nullptr || (t->size() == 6 && t->compare(0, 3, "<0x") == 0 && t->back() == '>');
    run = byte ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  return longest;
}

// Pushes `ids` one at a time; each piece must be whole UTF-8 on its own.
std::string Stream(kaon::IncrementalDecoder& dec, std::span<const int32_t> ids) {
  std::string all;
  for (int32_t id : ids) {
    const std::string piece = dec.Push(id);
    KAON_FUZZ_CHECK(kaon::utf8::IsValid(piece));
    all += piece;
  }
  const std::string rest = dec.Flush();
  KAON_FUZZ_CHECK(kaon::utf8::IsValid(rest));
  return all + rest;
}

void Exercise(const Loaded& t, uint8_t options, std::string_view text) {
  const kaon::Tokenizer& tok = *t.tok;
  const int32_t vocab = tok.VocabSize();
  const bool skip = options & 1;

  for (bool add_special : {false, true}) {
    const std::vector<int32_t> ids = tok.Encode(text, add_special);
    for (int32_t id : ids) KAON_FUZZ_CHECK(id >= 0 && id < vocab);
    const std::string decoded = tok.Decode(ids, /*skip_special_tokens=*/false);
    KAON_FUZZ_CHECK(kaon::utf8::IsValid(decoded));
    if (!add_special && t.byte_level_round_trip && kaon::utf8::IsValid(text)) KAON_FUZZ_CHECK(decoded == text);
    KAON_FUZZ_CHECK(kaon::utf8::IsValid(tok.Decode(ids, /*skip_special_tokens=*/true)));
  }

  const std::vector<int32_t> raw = IdsFromBytes(text, vocab);
  const std::string full = tok.Decode(raw, skip);
  KAON_FUZZ_CHECK(kaon::utf8::IsValid(full));
  for (int32_t id : raw) (void)tok.IdToToken(id);  // empty for unknown ids, never a throw

  // incremental_decoder.h: after context ids (none when split is 0), the
  // pieces concatenate to Decode(context + ids) minus Decode(context), where
  // the latter is a prefix of the former (always so without context). The
  // ByteFallback cases once found here: a byte token already streamed that a
  // later invalid byte turned into U+FFFD (corpus/tokenizer/
  // regress-stream-byte-fallback), and a context window starting inside a
  // UTF-8 sequence split across byte-level tokens
  // (regress-incremental-context-invalid-utf8). Runs of byte tokens longer
  // than the decoder holds back are not compared.
  const size_t split = raw.empty() ? 0 : (options >> 2) % (raw.size() + 1);
  const std::span<const int32_t> context(raw.data(), split);
  kaon::IncrementalDecoder dec(tok, context, skip);
  const std::string tail = Stream(dec, std::span<const int32_t>(raw).subspan(split));
  const std::string head = tok.Decode(context, skip);
  if (full.compare(0, head.size(), head) == 0 && LongestByteRun(tok, raw, skip) <= 64) {
    KAON_FUZZ_CHECK(tail == full.substr(head.size()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& tokenizers = Tokenizers();
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  // One tokenizer per input (bit 1): running both would halve the
  // executions, and the mutated options byte reaches both anyway.
  Exercise(tokenizers[(data[0] >> 1) % tokenizers.size()], data[0], text);
  return 0;
}
