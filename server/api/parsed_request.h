// A validated /v1/completions or /v1/chat/completions body, in the engine's
// terms: token-id prompts and SamplingParams.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "server/api/api_error.h"
#include "server/engine/engine.h"
#include "server/engine/sampling_params.h"

namespace kaon::api {

enum class RequestKind { kCompletion, kChat };

struct ParsedRequest {
  RequestKind kind = RequestKind::kCompletion;
  std::string model;
  // One engine request per prompt (chat: exactly one, the rendered messages).
  std::vector<std::vector<int32_t>> prompts;
  // With echo only: the prompts as text, the client's string or the decoded ids.
  std::vector<std::string> prompt_texts;
  std::string rendered_chat_prompt;  // chat only: the template's output
  SamplingParams params;
  int32_t priority = 0;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool echo = false;
  std::optional<std::string> user;
};

using ParseResult = std::variant<ParsedRequest, ApiError>;

// The engine request for prompt i of a parsed request.
GenerationRequest ToGenerationRequest(const ParsedRequest& request, size_t prompt_index);

}  // namespace kaon::api
