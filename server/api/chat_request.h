// /v1/chat/completions bodies: messages rendered by the model's chat template
// into one prompt, plus chat's logprobs/top_logprobs on top of the shared
// fields.
#pragma once

#include <optional>
#include <string>
#include <variant>

#include "nlohmann/json.hpp"
#include "server/api/field_reader.h"
#include "server/api/parsed_request.h"
#include "server/api/serving_context.h"

namespace kaon::api {

// Renders with ctx.chat_template and tokenizes WITHOUT special tokens (the
// template writes them). A null template answers 400 naming --chat-template.
ParseResult ParseChatRequest(const nlohmann::ordered_json& body, const ServingContext& ctx);

// What shapes a chat prompt, as read from either wire (JSON here, kaon.v1 in
// server/grpc): the values the template will see plus the options.
struct ChatPromptFields {
  const nlohmann::ordered_json* messages = nullptr;  // absent when null; borrowed
  nlohmann::ordered_json tools;                // a list, or null
  std::optional<std::string> tool_choice;      // only "auto" and "none" are supported
  nlohmann::ordered_json documents;            // a list, or null
  nlohmann::ordered_json chat_template_kwargs;  // an object, or null
  bool add_generation_prompt = true;
  bool continue_final_message = false;
};

// The chat rules (template present, message and tool counts, message shapes,
// tool_choice, continue_final_message), then the rendering.
std::variant<std::string, ApiError> RenderChat(ChatPromptFields fields, const ServingContext& ctx);

// The tool-count limit's one message; gRPC checks it before converting a
// tool (chat_messages.h's CheckMessageCount is its twin for messages).
std::optional<ApiError> CheckToolCount(size_t tools, const RequestLimits& limits);

// Reads the JSON fields that shape the prompt (messages, tools, tool_choice,
// documents, chat_template_kwargs, add_generation_prompt,
// continue_final_message) and renders them with RenderChat;
// /v1/chat/completions and /tokenize share it. nullopt with the error
// recorded in `r` on failure.
std::optional<std::string> RenderChatPrompt(FieldReader& r, const ServingContext& ctx);

// continue_final_message: the prompt rendered with add_generation_prompt =
// false ends with the final message's content followed by the template's
// end-of-turn text (e.g. "<|im_end|>\n"). We cut right after the last
// occurrence of that content so the model continues the message. Templates
// often strip content, so the content is searched stripped and its trailing
// whitespace kept only when the template kept it. nullopt when the content
// cannot be found in the rendering.
std::optional<std::string> TrimAfterFinalMessage(const std::string& rendered, const std::string& final_content);

}  // namespace kaon::api
