#include "server/tokenizer/incremental_decoder.h"

#include "server/tokenizer/tokenizer.h"

namespace kaon {
namespace {

bool EndsWithReplacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}

}  // namespace

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string IncrementalDecoder::Push(int32_t id) {
  ids_.push_back(id);
  const std::string text = tokenizer_.Decode(ids_, skip_special_tokens_);
  // A trailing U+FFFD may be a multi-byte character whose bytes are still
  // arriving; hold it until a later token settles it.
  if (text.size() <= prefix_text_.size() || EndsWithReplacement(text) ||
      text.compare(0, prefix_text_.size(), prefix_text_) != 0) {
    return "";
  }
  std::string fresh = text.substr(prefix_text_.size());
  // Keep the newest completed tokens as context for the next decode.
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_));
  prefix_ = ids_.size();
  prefix_text_ = tokenizer_.Decode(ids_, skip_special_tokens_);
  return fresh;
}

std::string IncrementalDecoder::Flush() {
  const std::string text = tokenizer_.Decode(ids_, skip_special_tokens_);
  std::string rest;
  if (text.size() > prefix_text_.size() && text.compare(0, prefix_text_.size(), prefix_text_) == 0) {
    rest = text.substr(prefix_text_.size());
  }
  ids_.clear();
  prefix_ = 0;
  prefix_text_.clear();
  return rest;
}

}  // namespace kaon
