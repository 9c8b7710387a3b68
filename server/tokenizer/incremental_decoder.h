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
  // The part of `text` (Decode of ids_) after what was already accounted for.
  std::string Fresh(const std::string& text) const;

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
};

}  // namespace kaon
