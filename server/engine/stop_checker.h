// Stop-string matching over a request's streamed output text.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kaon {

class StopChecker {
 public:
  struct Match {
    std::string_view stop;  // the stop string (owned by the checker)
    size_t begin;           // byte offsets of the match in the searched text
    size_t end;
  };

  // Empty stop strings are ignored: they would match before any output.
  explicit StopChecker(const std::vector<std::string>& stop);

  bool empty() const { return stop_.empty(); }
  size_t max_length() const { return max_length_; }

  // The match in `text` that completes first, among those ending after
  // text[0, old_size) (shorter text was searched before). The earliest end
  // wins because a streamed request stops as soon as any stop string is
  // complete; on equal ends the earlier start (longer string) wins.
  std::optional<Match> Find(std::string_view text, size_t old_size) const;

  // Length of the longest suffix of `text` that is a proper prefix of some
  // stop string: text that must not be shown until later text rules it out.
  size_t PartialMatchLength(std::string_view text) const;

 private:
  std::vector<std::string> stop_;
  size_t max_length_ = 0;
};

}  // namespace kaon
