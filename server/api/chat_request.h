// /v1/chat/completions bodies: messages rendered by the model's chat template
// into one prompt, plus chat's logprobs/top_logprobs on top of the shared
// fields.
#pragma once

#include <optional>
#include <string>

#include "nlohmann/json.hpp"
#include "server/api/field_reader.h"
#include "server/api/parsed_request.h"
#include "server/api/serving_context.h"

namespace kaon::api {

// Renders with ctx.chat_template and tokenizes WITHOUT special tokens (the
// template writes them). A null template answers 400 naming --chat-template.
ParseResult ParseChatRequest(const nlohmann::ordered_json& body, const ServingContext& ctx);

// Reads the fields that shape the prompt (messages, tools, tool_choice,
// documents, chat_template_kwargs, add_generation_prompt,
// continue_final_message) and renders it; /v1/chat/completions and
// /tokenize share it. nullopt with the error recorded in `r` on failure.
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
