#include "server/engine/stop_checker.h"

#include <algorithm>

namespace kaon {

StopChecker::StopChecker(const std::vector<std::string>& stop) {
  for (const std::string& s : stop) {
    if (s.empty()) continue;
    stop_.push_back(s);
    max_length_ = std::max(max_length_, s.size());
  }
}

std::optional<StopChecker::Match> StopChecker::Find(std::string_view text,
                                                    size_t old_size) const {
  std::optional<Match> best;
  for (const std::string& s : stop_) {
    // A match ending within text[0, old_size) was looked for already.
    const size_t from = old_size + 1 > s.size() ? old_size + 1 - s.size() : 0;
    const size_t begin = text.find(s, from);
    if (begin == std::string_view::npos) continue;
    const size_t end = begin + s.size();
    if (!best || end < best->end || (end == best->end && begin < best->begin)) {
      best = Match{s, begin, end};
    }
  }
  return best;
}

size_t StopChecker::PartialMatchLength(std::string_view text) const {
  size_t longest = 0;
  for (const std::string& s : stop_) {
    for (size_t len = std::min(s.size() - 1, text.size()); len > longest; --len) {
      if (text.compare(text.size() - len, len, s, 0, len) == 0) {
        longest = len;
        break;
      }
    }
  }
  return longest;
}

}  // namespace kaon
