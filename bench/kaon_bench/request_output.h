// What one benchmark request produced: the timeline the metrics are computed
// from. Times are seconds, relative to the start of the benchmark run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kaon::bench {

struct RequestOutput {
  int index = 0;             // position in the dataset
  bool success = false;
  std::string error;         // HTTP status and body, transport error, or an error event
  double start_s = 0;        // when the request was sent (after any concurrency wait)
  double ttft_s = 0;         // send -> first chunk carrying generated text
  double latency_s = 0;      // send -> end of the stream (E2EL); also set for failures
  std::vector<double> itl_s; // gaps between consecutive content chunks
  int64_t prompt_tokens = 0; // usage.prompt_tokens, else the dataset's count
  int64_t output_tokens = 0; // usage.completion_tokens, else the number of content chunks
  bool usage_reported = false;
  int64_t content_chunks = 0;
  std::string generated_text;
};

}  // namespace kaon::bench
