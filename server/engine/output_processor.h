// Per-request output processing on the consumer's thread: turns generated
// token ids into the text a client may see, applying stop strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "server/engine/stop_checker.h"
#include "server/tokenizer/incremental_decoder.h"

namespace kaon {

class Tokenizer;

struct OutputOptions {
  bool skip_special_tokens = true;
  std::vector<std::string> stop;  // stop strings
  bool include_stop_str_in_output = false;
};

struct TextDelta {
  std::string text;       // new text safe to show now (complete UTF-8 only)
  bool stopped = false;   // a stop string matched: finish with reason "stop"
  std::string stop_str;   // which one
  // How many of the pushed ids were consumed, up to and including the one
  // that completed the stop string; the rest must be discarded.
  size_t num_tokens_consumed = 0;
};

class OutputProcessor {
 public:
  // prompt_ids are decoding context only: text() is what appears after the
  // prompt, i.e. Decode(prompt + outputs) minus Decode(prompt). The tokenizer
  // must outlive the processor.
  OutputProcessor(const Tokenizer& tok, std::span<const int32_t> prompt_ids,
                  OutputOptions options);

  // 1+ new tokens. After a stop, further pushes consume nothing.
  TextDelta Push(std::span<const int32_t> new_ids);
  // At finish (length/EOS/abort): releases what was held back (an unfinished
  // UTF-8 sequence becomes U+FFFD; a possible stop-string prefix is shown).
  // Not to be called after a stop; returns "" then.
  std::string Finish();
  // All text emitted so far (what the client has seen).
  const std::string& text() const { return text_; }
  bool stopped() const { return stopped_; }

 private:
  // Appends detokenized text; returns true when a stop string completed.
  bool Append(const std::string& piece);

  IncrementalDecoder decoder_;
  StopChecker stop_checker_;
  bool include_stop_str_in_output_;
  std::string text_;
  // Output text after text_ not shown yet because it may start a stop string.
  std::string held_;
  bool stopped_ = false;
  bool finished_ = false;
  std::string stop_str_;
};

}  // namespace kaon
