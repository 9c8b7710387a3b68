#include "server/tokenizer/incremental_decoder.h"

#include <algorithm>

#include "server/tokenizer/tokenizer.h"

namespace kaon {
namespace {

// Context tokens kept before the first pushed token. Correctness needs only
// one token that produces text; a few more match what vLLM keeps.
constexpr size_t kMinContextTokens = 4;

bool EndsWithReplacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}

bool StartsWithReplacement(const std::string& s) { return s.compare(0, 3, "\xEF\xBF\xBD") == 0; }

bool IsContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

bool IsHexDigit(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }

}  // namespace

// "<0xHH>" is a SentencePiece byte-fallback token (a vocabulary without byte
// fallback rarely has one; holding it back there only delays it). Unknown
// ids and skipped special tokens never reach the decoder, so a byte run
// continues across them.
IncrementalDecoder::Kind IncrementalDecoder::KindOf(int32_t id) const {
  const std::string* token = tokenizer_.DecodeToken(id, skip_special_tokens_);
  if (token == nullptr) return Kind::kInvisible;
  const std::string& t = *token;
  const bool byte = t.size() == 6 && t.compare(0, 3, "<0x") == 0 && IsHexDigit(t[3]) && IsHexDigit(t[4]) && t[5] == '>';
  return byte ? Kind::kByte : Kind::kText;
}

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer,
                                       std::span<const int32_t> context_ids,
                                       bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {
  // Walk back over the context until the window holds enough tokens and at
  // least one that decodes to text on its own; a window of only skipped
  // special tokens would make the decoder treat the first pushed token as
  // the start of the text and, e.g., strip its leading space.
  size_t start = context_ids.size();
  bool has_text = false;
  while (start > 0 && (!has_text || context_ids.size() - start < kMinContextTokens)) {
    --start;
    if (!has_text) {
      has_text = !tokenizer_.Decode(context_ids.subspan(start, 1), skip_special_tokens_).empty();
    }
  }
  // Never start inside a run of byte tokens: ByteFallback decodes a run as a
  // whole, so a window holding only its tail reads differently.
  for (size_t steps = 0; start > 0 && steps < kMaxHeldByteTokens && KindOf(context_ids[start]) != Kind::kText &&
                         KindOf(context_ids[start - 1]) != Kind::kText;
       ++steps) {
    --start;
  }
  // Nor inside a UTF-8 sequence split across tokens (byte-level BPE): UTF-8
  // resynchronises at any byte that is not a continuation byte, so a window
  // whose text does not start with U+FFFD reads as the whole context does.
  for (size_t steps = 0;; ++steps) {
    ids_.assign(context_ids.begin() + static_cast<std::ptrdiff_t>(start), context_ids.end());
    prefix_text_ = tokenizer_.Decode(ids_, skip_special_tokens_);
    if (start == 0 || steps == kMaxHeldByteTokens || !StartsWithReplacement(prefix_text_)) break;
    --start;
  }
  read_ = ids_.size();
}

std::string IncrementalDecoder::Fresh(const std::string& text) const {
  if (text.compare(0, prefix_text_.size(), prefix_text_) == 0) {
    return text.substr(prefix_text_.size());
  }
  // The new tokens changed text already accounted for. With the decoders
  // supported this only happens when the context ended inside a UTF-8
  // sequence (shown as U+FFFD) that the pushed bytes complete: the completed
  // character is returned as new text.
  size_t common = 0;
  const size_t limit = std::min(text.size(), prefix_text_.size());
  while (common < limit && text[common] == prefix_text_[common]) ++common;
  while (common > 0 && common < text.size() && IsContinuationByte(text[common])) --common;
  return text.substr(common);
}

std::string IncrementalDecoder::Push(int32_t id) {
  ids_.push_back(id);
  // ByteFallback turns a run of byte tokens that is not valid UTF-8 into one
  // U+FFFD per byte, bytes of whole characters before it included ("<0x71>"
  // alone is "q"; followed by "<0xE2>" both read as U+FFFD). Hold a run back
  // until a token that is not a byte ends it, so nothing sent is later read
  // differently; bounded, so a long run cannot make every push decode it all.
  const Kind kind = KindOf(id);
  if (kind == Kind::kByte || (kind == Kind::kInvisible && held_bytes_ > 0)) {
    if (++held_bytes_ <= kMaxHeldByteTokens) return "";
  }
  held_bytes_ = 0;
  const std::string text = tokenizer_.Decode(ids_, skip_special_tokens_);
  // A trailing U+FFFD may be a multi-byte character whose bytes are still
  // arriving; hold it until a later token settles it.
  if (EndsWithReplacement(text)) return "";
  std::string fresh = Fresh(text);
  if (fresh.empty()) {
    // Nothing visible yet (e.g. a skipped special token): keep the whole
    // window so it still starts with a token that produced text.
    read_ = ids_.size();
    prefix_text_ = text;
    return fresh;
  }
  // The tokens that produced `fresh` become the whole context.
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(read_));
  read_ = ids_.size();
  prefix_text_ = tokenizer_.Decode(ids_, skip_special_tokens_);
  return fresh;
}

std::string IncrementalDecoder::Flush() {
  std::string rest;
  held_bytes_ = 0;
  if (read_ < ids_.size()) rest = Fresh(tokenizer_.Decode(ids_, skip_special_tokens_));
  ids_.clear();
  read_ = 0;
  prefix_text_.clear();
  return rest;
}

}  // namespace kaon
