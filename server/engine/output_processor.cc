#include "server/engine/output_processor.h"

#include <algorithm>
#include <utility>

#include "server/tokenizer/tokenizer.h"

namespace kaon {

OutputProcessor::OutputProcessor(const Tokenizer& tok, std::span<const int32_t> prompt_ids,
                                 OutputOptions options)
    : decoder_(tok, prompt_ids, options.skip_special_tokens),
      stop_checker_(options.stop),
      include_stop_str_in_output_(options.include_stop_str_in_output) {}

bool OutputProcessor::Append(const std::string& piece) {
  if (piece.empty() || stop_checker_.empty()) {
    text_ += piece;
    return false;
  }
  // A match may start in held_ or, when nothing is held back (stop strings
  // included in the output), in the shown text's tail; text shown while
  // stop strings are excluded was ruled out as the start of one before it
  // was released.
  const size_t tail =
      include_stop_str_in_output_ ? std::min(text_.size(), stop_checker_.max_length() - 1) : 0;
  std::string window = text_.substr(text_.size() - tail) + held_;
  const size_t old_size = window.size();
  window += piece;
  if (const auto match = stop_checker_.Find(window, old_size)) {
    // match->end > old_size >= tail: the cut never removes shown text.
    window.resize(include_stop_str_in_output_ ? match->end : match->begin);
    text_.append(window, tail);
    held_.clear();
    stopped_ = true;
    stop_str_ = std::string(match->stop);
    return true;
  }
  // With the stop string included, everything before its end is shown
  // anyway, so nothing needs holding back.
  const size_t keep =
      include_stop_str_in_output_ ? 0 : stop_checker_.PartialMatchLength(window);
  text_.append(window, tail, window.size() - tail - keep);
  held_ = window.substr(window.size() - keep);
  return false;
}

TextDelta OutputProcessor::Push(std::span<const int32_t> new_ids) {
  TextDelta delta;
  if (stopped_ || finished_) {
    delta.stopped = stopped_;
    delta.stop_str = stop_str_;
    return delta;
  }
  const size_t shown = text_.size();
  // Token by token, so that a stop is attributed to the exact token that
  // completed it whatever the chunking.
  for (int32_t id : new_ids) {
    ++delta.num_tokens_consumed;
    if (Append(decoder_.Push(id))) {
      delta.stopped = true;
      delta.stop_str = stop_str_;
      break;
    }
  }
  delta.text = text_.substr(shown);
  return delta;
}

std::string OutputProcessor::Finish() {
  if (stopped_ || finished_) return "";
  finished_ = true;
  const size_t shown = text_.size();
  // The flushed text may still complete a stop string; the output is then
  // cut there as for any stop, so the text never contains one.
  if (!Append(decoder_.Flush())) {
    text_ += held_;
    held_.clear();
  }
  return text_.substr(shown);
}

}  // namespace kaon
