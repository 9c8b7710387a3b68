#include "bench/kaon_bench/request_body.h"

#include "nlohmann/json.hpp"

namespace kaon::bench {

std::string BuildRequestBody(const BodyOptions& o, const std::string& prompt, int64_t max_tokens) {
  nlohmann::ordered_json j;
  j["model"] = o.model;
  if (o.backend == Backend::kOpenAiChat) {
    nlohmann::ordered_json msg;
    msg["role"] = "user";
    msg["content"] = prompt;
    j["messages"] = nlohmann::ordered_json::array({msg});
    j["max_completion_tokens"] = max_tokens;
  } else {
    j["prompt"] = prompt;
    j["max_tokens"] = max_tokens;
  }
  j["temperature"] = o.temperature;
  j["stream"] = true;
  j["stream_options"]["include_usage"] = true;
  if (o.ignore_eos) j["ignore_eos"] = true;
  // Random token ids can decode to invalid UTF-8; replace rather than throw.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string DefaultEndpoint(Backend b) {
  return b == Backend::kOpenAiChat ? "/v1/chat/completions" : "/v1/completions";
}

}  // namespace kaon::bench
