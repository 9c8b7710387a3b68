// Reading a Prometheus text exposition in tests.
#pragma once

#include <string>

namespace kaon::testing {

// The value of the first sample line that starts with `series` (the name
// plus the start of its labels), or -1 when there is none.
inline double PrometheusSample(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      const size_t eol = text.find('\n', at);
      const std::string line = text.substr(at, eol - at);
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
    ++at;
  }
  return -1;
}

}  // namespace kaon::testing
