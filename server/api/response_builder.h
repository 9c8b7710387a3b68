// Turns a request's engine events into OpenAI responses: the whole
// text_completion / chat.completion object, or the SSE chunks of a stream
// (text_completion chunks, chat.completion.chunk with a role delta first),
// ending with the include_usage chunk and "data: [DONE]".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/api/api_error.h"
#include "server/api/logprobs_json.h"
#include "server/api/parsed_request.h"
#include "server/engine/request_output.h"

namespace kaon {
class Tokenizer;
}

namespace kaon::api {

struct ResponseMeta {
  std::string id;       // "cmpl-…" or "chatcmpl-…"
  int64_t created = 0;  // Unix seconds
  std::string model;
  std::optional<std::string> system_fingerprint;  // null when unset

  // A fresh random id for the kind and the current time.
  static ResponseMeta Make(RequestKind kind, std::string model);
};

// "data: {json}\n\n" (invalid UTF-8, which should not occur, is replaced
// rather than throwing).
std::string SseEvent(const nlohmann::ordered_json& payload);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

class ResponseBuilder {
 public:
  // Borrows request and tokenizer; both must outlive the builder.
  ResponseBuilder(const ParsedRequest& request, const Tokenizer& tokenizer, ResponseMeta meta);

  // One engine event of prompt `prompt_index` (a completions request with
  // several prompts runs one engine request per prompt; its choices are
  // numbered prompt_index * n + event index, as in vLLM). Returns the SSE
  // chunks the event produces when the request streams, else nothing. An
  // event whose text is still empty (held back mid-character or while a stop
  // string may be matching) produces no chunk: its logprobs ride with the
  // next one, so every content chunk carries text.
  std::vector<std::string> Add(size_t prompt_index, const RequestOutput& event);

  // Streaming: the usage chunk (with include_usage) and "data: [DONE]".
  std::vector<std::string> FinishStream() const;
  // Non-streaming: the complete response object.
  nlohmann::ordered_json Response() const;
  nlohmann::ordered_json UsageJson() const;

  // Set when an event reported a failed step (500, server_error); the
  // non-streaming front end answers with it instead of Response().
  const std::optional<ApiError>& error() const { return error_; }
  bool finished() const { return num_finished_ == choices_.size(); }

 private:
  struct Choice {
    bool started = false;
    bool finished = false;
    std::string text;
    int64_t num_tokens = 0;
    FinishReason finish_reason = FinishReason::kNone;
    std::variant<std::monostate, int32_t, std::string> stop_reason;
    CompletionLogprobs completion_logprobs;
    nlohmann::ordered_json chat_logprobs = nlohmann::ordered_json::array();
    // Not yet sent in a stream chunk.
    std::string pending_text;
    CompletionLogprobs pending_completion_logprobs;
    nlohmann::ordered_json pending_chat_logprobs = nlohmann::ordered_json::array();
  };

  bool chat() const { return request_.kind == RequestKind::kChat; }
  bool logprobs() const { return request_.params.logprobs >= 0; }
  void AddPromptEcho(size_t prompt_index, const RequestOutput& event, Choice& c);
  void AddSampled(const SampleResult& sample, Choice& c);
  nlohmann::ordered_json Envelope(const char* object) const;
  nlohmann::ordered_json ChunkChoice(size_t index, Choice& c);
  static nlohmann::ordered_json StopReasonJson(const Choice& c);

  const ParsedRequest& request_;
  const Tokenizer& tokenizer_;
  ResponseMeta meta_;
  std::vector<Choice> choices_;
  std::vector<int64_t> cached_tokens_;  // per prompt
  size_t num_finished_ = 0;
  std::optional<ApiError> error_;
};

}  // namespace kaon::api
