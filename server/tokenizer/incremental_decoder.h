// Streaming detokenization for generated tokens. Each Push returns only text
// that later tokens cannot change, so the concatenation of all Push results
// and Flush equals Decode(context + ids) minus Decode(context).
//
// Cost per token is two Decode calls over a short window (the last tokens
// whose text was already returned, plus the pending ones), not over the
// whole sequence.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kaon {

class Tokenizer;

class IncrementalDecoder {
 public:
  // The tokenizer must outlive the decoder.
  IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);
  // context_ids (e.g. the prompt) are never returned as text, but decide how
  // the first pushed tokens read: SentencePiece-style decoders drop the
  // leading space only at the very start of the whole text.
  IncrementalDecoder(const Tokenizer& tokenizer, std::span<const int32_t> context_ids,
                     bool skip_special_tokens);

  std::string Push(int32_t id);
  // Whatever is still held back (e.g. an unfinished UTF-8 sequence, decoded
  // as replacement characters, as Decode would).
  std::string Flush();

 private:
  // Longest run of byte-fallback tokens held back (and walked back over in
  // the context); longer runs stream as they come, and may then read
  // differently from Decode. A UTF-8 character is at most 4 bytes.
  static constexpr size_t kMaxHeldByteTokens = 64;

  // The part of `text` (Decode of ids_) after what was already accounted for.
  std::string Fresh(const std::string& text) const;
  enum class Kind { kText, kByte, kInvisible };
  Kind KindOf(int32_t id) const;

  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  // ids_[0, read_) are context only; their text, prefix_text_, was returned
  // already (or belongs to the caller's context). Decoding needs them because
  // decoders such as Strip or Metaspace treat the first token specially, so
  // the window always keeps at least one token that produced text, unless it
  // starts at the very beginning.
  std::vector<int32_t> ids_;
  size_t read_ = 0;
  std::string prefix_text_;
  size_t held_bytes_ = 0;  // byte (and invisible) tokens pushed since the last text token
};

}  // namespace kaon
