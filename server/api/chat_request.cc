#include "server/api/chat_request.h"

#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/api/chat_messages.h"
#include "server/api/common_fields.h"
#include "server/template/chat_template.h"
#include "server/tokenizer/tokenizer.h"

namespace kaon::api {
namespace {

using Json = nlohmann::ordered_json;

void ReadChatLogprobs(FieldReader& r, ParsedRequest& out) {
  bool logprobs = false;
  r.Bool("logprobs", &logprobs);
  int64_t top = -1;
  r.Int("top_logprobs", &top);
  if (!r.ok()) return;
  if (top >= 0 && !logprobs) return r.Fail("top_logprobs", "top_logprobs requires logprobs to be true");
  if (top > SamplingParams::kMaxLogprobs || top < -1 || (r.Get("top_logprobs") && top < 0)) {
    return r.Fail("top_logprobs",
                  absl::StrCat("top_logprobs must be in [0, ", SamplingParams::kMaxLogprobs, "], got ", top));
  }
  if (logprobs) out.params.logprobs = static_cast<int32_t>(std::max<int64_t>(top, 0));
}

// Only tool_choice values that need no constrained decoding are accepted.
void ReadToolChoice(FieldReader& r, bool* tools_enabled) {
  *tools_enabled = true;
  const Json* v = r.Get("tool_choice");
  if (!v) return;
  if (v->is_string() && v->get<std::string>() == "auto") return;
  if (v->is_string() && v->get<std::string>() == "none") {
    // As vLLM: with "none" the template does not see the tools.
    *tools_enabled = false;
    return;
  }
  r.Fail("tool_choice", "tool_choice other than \"auto\" or \"none\" is not supported yet");
}

}  // namespace

std::optional<std::string> TrimAfterFinalMessage(const std::string& rendered, const std::string& final_content) {
  const std::string stripped(absl::StripAsciiWhitespace(final_content));
  if (stripped.empty()) return std::nullopt;
  const size_t at = rendered.rfind(stripped);
  if (at == std::string::npos) return std::nullopt;
  const std::string unstripped_tail(absl::StripLeadingAsciiWhitespace(final_content));
  if (rendered.compare(at, unstripped_tail.size(), unstripped_tail) == 0) {
    return rendered.substr(0, at + unstripped_tail.size());
  }
  return rendered.substr(0, at + stripped.size());
}

std::optional<std::string> RenderChatPrompt(FieldReader& r, const ServingContext& ctx) {
  ChatTemplateInputs in;
  in.add_generation_prompt = true;
  bool continue_final = false;
  r.Bool("add_generation_prompt", &in.add_generation_prompt);
  r.Bool("continue_final_message", &continue_final);
  if (r.ok() && continue_final && in.add_generation_prompt) {
    r.Fail("continue_final_message",
           "continue_final_message requires add_generation_prompt to be false (it defaults to true)");
  }
  bool tools_enabled = true;
  ReadToolChoice(r, &tools_enabled);
  if (const Json* tools = r.Get("tools")) {
    if (!tools->is_array()) {
      r.Fail("tools", "tools must be a list");
    } else if (tools->size() > ctx.limits.max_tools) {
      r.Fail("tools", absl::StrCat("tools holds ", tools->size(), " tools; at most ", ctx.limits.max_tools,
                                   " are allowed (--max-tools)"));
    } else if (tools_enabled && !tools->empty()) {
      in.tools = *tools;
    }
  }
  if (const Json* docs = r.Get("documents")) {
    if (!docs->is_array()) r.Fail("documents", "documents must be a list");
    else in.documents = *docs;
  }
  if (const Json* kwargs = r.Get("chat_template_kwargs")) {
    if (!kwargs->is_object()) r.Fail("chat_template_kwargs", "chat_template_kwargs must be an object");
    else in.extra_kwargs = *kwargs;
  }
  const Json* messages = r.Get("messages");
  if (!messages) r.Fail("messages", "messages is required");
  if (!r.ok()) return std::nullopt;

  if (ctx.chat_template == nullptr) {
    r.Fail("messages",
           "this model has no chat template; start the server with --chat-template FILE "
           "(a Jinja chat template) to use chat messages");
    return std::nullopt;
  }
  std::variant<Json, ApiError> normalized = NormalizeChatMessages(*messages, ctx.limits);
  if (auto* e = std::get_if<ApiError>(&normalized)) {
    r.Fail(*e);
    return std::nullopt;
  }
  in.messages = std::move(std::get<Json>(normalized));

  absl::StatusOr<std::string> rendered = ctx.chat_template->Render(in);
  if (!rendered.ok()) {
    ApiError e = ApiErrorFromStatus(rendered.status(), "messages");
    // Sandbox limits are a property of this request, not server load.
    if (rendered.status().code() == absl::StatusCode::kResourceExhausted) e = InvalidRequest("messages", e.message);
    r.Fail(e);
    return std::nullopt;
  }
  std::string prompt = std::move(*rendered);
  if (continue_final) {
    const Json& last = in.messages.back();
    const std::string content = last.contains("content") && last["content"].is_string()
                                    ? last["content"].get<std::string>()
                                    : std::string();
    std::optional<std::string> trimmed = TrimAfterFinalMessage(prompt, content);
    if (!trimmed) {
      r.Fail("continue_final_message",
             "continue_final_message: the final message's content was not found in the rendered prompt (is it "
             "empty?)");
      return std::nullopt;
    }
    prompt = std::move(*trimmed);
  }
  return prompt;
}

ParseResult ParseChatRequest(const Json& body, const ServingContext& ctx) {
  if (!body.is_object()) return InvalidRequest("", "the request body must be a JSON object");
  ParsedRequest out;
  out.kind = RequestKind::kChat;
  FieldReader r(body);
  bool max_tokens_given = false;
  ReadCommonFields(r, ctx, out, &max_tokens_given);
  ReadChatLogprobs(r, out);
  if (r.Get("suffix")) r.Fail("suffix", "suffix is not supported");

  std::optional<std::string> rendered = RenderChatPrompt(r, ctx);
  if (!rendered) return *r.error();
  std::string prompt = std::move(*rendered);
  out.prompts.push_back(ctx.tokenizer->Encode(prompt, /*add_special_tokens=*/false));
  out.rendered_chat_prompt = std::move(prompt);
  if (std::optional<ApiError> e = FinishCommonFields(ctx, max_tokens_given, out)) return *e;
  return out;
}

}  // namespace kaon::api
