// Server-sent events as OpenAI-compatible servers stream them, and what one
// `data:` payload means for the request's timeline. Pure: no sockets, so the
// framing is unit tested with arbitrary splits of the byte stream.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/kaon_bench/request_output.h"

namespace kaon::bench {

// Collects bytes and returns the `data:` payloads of each complete event.
// Events end with a blank line; "\r\n" line ends are accepted; comment lines
// (": keep-alive") and other fields are ignored.
class SseParser {
 public:
  std::vector<std::string> Feed(std::string_view bytes);

 private:
  std::string pending_;
};

// Folds events into a RequestOutput as they arrive at time t (seconds from the
// start of the run).
class StreamAccumulator {
 public:
  explicit StreamAccumulator(RequestOutput* out) : out_(out) {}
  // Returns false once the stream is over ([DONE] or an error event).
  bool OnEvent(const std::string& data, double t);
  // Called when the connection ends: success unless an error was seen or no
  // content arrived.
  void Finish(double t);

 private:
  RequestOutput* out_;
  bool done_ = false;
  bool failed_ = false;
  double last_content_t_ = 0;
};

}  // namespace kaon::bench
