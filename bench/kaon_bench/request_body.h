// The JSON body of one benchmark request, as `vllm bench serve` sends it:
// greedy by default, streamed, with usage in the last chunk so TPOT and the
// token throughputs use the server's own token counts.
#pragma once

#include <cstdint>
#include <string>

namespace kaon::bench {

enum class Backend { kOpenAiCompletions, kOpenAiChat };

struct BodyOptions {
  Backend backend = Backend::kOpenAiCompletions;
  std::string model;
  bool ignore_eos = false;
  double temperature = 0.0;
};

std::string BuildRequestBody(const BodyOptions& o, const std::string& prompt, int64_t max_tokens);

// "/v1/completions" or "/v1/chat/completions".
std::string DefaultEndpoint(Backend b);

}  // namespace kaon::bench
