// Streaming detokenization for generated tokens. Each Push returns only text
// that later tokens cannot change, so the concatenation of all Push results
// and Flush equals Tokenizer::Decode of all ids.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kaon {

class Tokenizer;

class IncrementalDecoder {
 public:
  // The tokenizer must outlive the decoder.
  IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);

  std::string Push(int32_t id);
  // Whatever is still held back (e.g. an unfinished UTF-8 sequence, decoded
  // as replacement characters, as Decode would).
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  // ids_[0, prefix_) are context only; their text, prefix_text_, was emitted
  // already. Decoding needs that context because decoders such as Strip or
  // Metaspace treat the first token specially.
  std::vector<int32_t> ids_;
  size_t prefix_ = 0;
  std::string prefix_text_;
};

}  // namespace kaon
