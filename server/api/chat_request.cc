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

// Chat asks for logprobs with a boolean and counts alternatives in
// top_logprobs; the count's range is the rule FinishCommonFields checks
// under the name top_logprobs.
void ReadChatLogprobs(FieldReader& r, ParsedRequest& out) {
  bool logprobs = false;
  r.Bool("logprobs", &logprobs);
  int32_t top = 0;
  r.Int("top_logprobs", &top);
  if (!r.ok()) return;
  if (r.Get("top_logprobs") && !logprobs) return r.Fail("top_logprobs", "top_logprobs requires logprobs to be true");
  // -1 means no alternatives, as in completions: the sampled token's logprob only.
  if (logprobs) out.params.logprobs = top == -1 ? 0 : top;
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

std::optional<ApiError> CheckToolCount(size_t tools, const RequestLimits& limits) {
  if (tools <= limits.max_tools) return std::nullopt;
  return InvalidRequest("tools", absl::StrCat("tools holds ", tools, " tools; at most ", limits.max_tools,
                                              " are allowed (--max-tools)"));
}

std::variant<std::string, ApiError> RenderChat(ChatPromptFields f, const ServingContext& ctx) {
  if (f.continue_final_message && f.add_generation_prompt) {
    return InvalidRequest("continue_final_message",
                          "continue_final_message requires add_generation_prompt to be false (it defaults to true)");
  }
  // Only tool_choice values that need no constrained decoding are accepted;
  // with "none" the template does not see the tools, as in vLLM.
  if (f.tool_choice && *f.tool_choice != "auto" && *f.tool_choice != "none") {
    return InvalidRequest("tool_choice", "tool_choice other than \"auto\" or \"none\" is not supported yet");
  }
  if (f.tools.is_array()) {
    if (std::optional<ApiError> e = CheckToolCount(f.tools.size(), ctx.limits)) return *e;
  }
  if (f.messages == nullptr) return InvalidRequest("messages", "messages is required");
  if (ctx.chat_template == nullptr) {
    return InvalidRequest("messages",
                          "this model has no chat template; start the server with --chat-template FILE "
                          "(a Jinja chat template) to use chat messages");
  }
  ChatTemplateInputs in;
  in.add_generation_prompt = f.add_generation_prompt;
  if (f.tools.is_array() && !f.tools.empty() && f.tool_choice.value_or("auto") != "none") in.tools = std::move(f.tools);
  if (f.documents.is_array()) in.documents = std::move(f.documents);
  if (f.chat_template_kwargs.is_object()) in.extra_kwargs = std::move(f.chat_template_kwargs);
  std::variant<Json, ApiError> normalized = NormalizeChatMessages(*f.messages, ctx.limits);
  if (auto* e = std::get_if<ApiError>(&normalized)) return *e;
  in.messages = std::move(std::get<Json>(normalized));

  absl::StatusOr<std::string> rendered = ctx.chat_template->Render(in);
  if (!rendered.ok()) {
    ApiError e = ApiErrorFromStatus(rendered.status(), "messages");
    // Sandbox limits are a property of this request, not server load.
    if (rendered.status().code() == absl::StatusCode::kResourceExhausted) e = InvalidRequest("messages", e.message);
    return e;
  }
  std::string prompt = std::move(*rendered);
  if (f.continue_final_message) {
    const Json& last = in.messages.back();
    const std::string content = last.contains("content") && last["content"].is_string()
                                    ? last["content"].get<std::string>()
                                    : std::string();
    std::optional<std::string> trimmed = TrimAfterFinalMessage(prompt, content);
    if (!trimmed) {
      return InvalidRequest("continue_final_message",
                            "continue_final_message: the final message's content was not found in the rendered "
                            "prompt (is it empty?)");
    }
    prompt = std::move(*trimmed);
  }
  return prompt;
}

std::optional<std::string> RenderChatPrompt(FieldReader& r, const ServingContext& ctx) {
  ChatPromptFields f;
  r.Bool("add_generation_prompt", &f.add_generation_prompt);
  r.Bool("continue_final_message", &f.continue_final_message);
  if (const Json* v = r.Get("tool_choice")) {
    // An object (a named function) is one of the unsupported choices.
    f.tool_choice = v->is_string() ? v->get<std::string>() : std::string("function");
  }
  if (const Json* tools = r.Get("tools")) {
    if (!tools->is_array()) r.Fail("tools", "tools must be a list");
    else f.tools = *tools;
  }
  if (const Json* docs = r.Get("documents")) {
    if (!docs->is_array()) r.Fail("documents", "documents must be a list");
    else f.documents = *docs;
  }
  if (const Json* kwargs = r.Get("chat_template_kwargs")) {
    if (!kwargs->is_object()) r.Fail("chat_template_kwargs", "chat_template_kwargs must be an object");
    else f.chat_template_kwargs = *kwargs;
  }
  f.messages = r.Get("messages");
  if (!r.ok()) return std::nullopt;
  std::variant<std::string, ApiError> rendered = RenderChat(std::move(f), ctx);
  if (auto* e = std::get_if<ApiError>(&rendered)) {
    r.Fail(std::move(*e));
    return std::nullopt;
  }
  return std::move(std::get<std::string>(rendered));
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
