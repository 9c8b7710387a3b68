// `kaon tokenize MODEL_DIR --jsonl`: a line-oriented tokenizer service used by
// conformance tests and scripts.
#pragma once

#include <iosfwd>
#include <string>

namespace kaon {

// Reads JSON lines from `in`:
//   {"text": "...", "add_special_tokens": true}   -> {"ids": [...]}
//   {"ids": [...], "skip_special_tokens": false}  -> {"text": "..."}
// writing one line per input line (flushed) to `out`. A bad line yields
// {"error": "..."} and processing continues. Returns non-zero, with a one-line
// message on `err`, if the tokenizer cannot be loaded.
int RunTokenizeCommand(const std::string& model_dir, std::istream& in, std::ostream& out,
                       std::ostream& err);

}  // namespace kaon
