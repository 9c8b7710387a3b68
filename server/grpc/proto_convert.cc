#include "server/grpc/proto_convert.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "server/api/chat_request.h"
#include "server/api/completion_request.h"
#include "server/api/request_body.h"
#include "server/engine/sampling_params.h"

namespace kaon::grpc_api {
namespace {

using Json = nlohmann::ordered_json;
using JsonOrError = std::variant<Json, api::ApiError>;

// JSON text fields (tools, chat_template_kwargs) are parsed keeping key
// order (templates print them), within the request limits: the one parser
// HTTP bodies go through.
std::optional<api::ApiError> ChatToJson(const kaon::v1::ChatInput& chat, const api::RequestLimits& limits,
                                        Json& body) {
  // Counted before any conversion, so a huge list costs nothing.
  if (static_cast<size_t>(chat.messages_size()) > limits.max_messages) {
    return api::InvalidRequest("messages", absl::StrCat("messages holds ", chat.messages_size(), " messages; at most ",
                                                        limits.max_messages, " are allowed (--max-chat-messages)"));
  }
  if (static_cast<size_t>(chat.tools_size()) > limits.max_tools) {
    return api::InvalidRequest("tools", absl::StrCat("tools holds ", chat.tools_size(), " tools; at most ",
                                                     limits.max_tools, " are allowed (--max-tools)"));
  }
  Json messages = Json::array();
  for (const kaon::v1::ChatMessage& m : chat.messages()) {
    Json msg = Json::object();
    msg["role"] = m.role();
    msg["content"] = m.has_content() ? Json(m.content()) : Json(nullptr);
    if (m.has_name()) msg["name"] = m.name();
    if (m.has_tool_call_id()) msg["tool_call_id"] = m.tool_call_id();
    if (m.tool_calls_size() > 0) {
      Json calls = Json::array();
      for (const kaon::v1::ToolCall& c : m.tool_calls()) {
        Json function = Json{{"name", c.function().name()}, {"arguments", c.function().arguments()}};
        calls.push_back(Json{{"id", c.id()},
                             {"type", c.type().empty() ? std::string("function") : c.type()},
                             {"function", std::move(function)}});
      }
      msg["tool_calls"] = std::move(calls);
    }
    messages.push_back(std::move(msg));
  }
  body["messages"] = std::move(messages);
  if (chat.tools_size() > 0) {
    Json tools = Json::array();
    for (int i = 0; i < chat.tools_size(); ++i) {
      const std::string field = absl::StrCat("tools[", i, "]");
      std::variant<Json, api::ApiError> t = api::ParseJsonText(chat.tools(i), limits, field);
      if (auto* e = std::get_if<api::ApiError>(&t)) {
        e->param = "tools";
        return *e;
      }
      if (!std::get<Json>(t).is_object()) return api::InvalidRequest("tools", field + " must be a JSON object text");
      tools.push_back(std::move(std::get<Json>(t)));
    }
    body["tools"] = std::move(tools);
  }
  if (chat.has_tool_choice()) body["tool_choice"] = chat.tool_choice();
  if (chat.has_chat_template_kwargs()) {
    std::variant<Json, api::ApiError> k =
        api::ParseJsonText(chat.chat_template_kwargs(), limits, "chat_template_kwargs");
    if (auto* e = std::get_if<api::ApiError>(&k)) return *e;
    if (!std::get<Json>(k).is_object()) {
      return api::InvalidRequest("chat_template_kwargs", "chat_template_kwargs must be a JSON object text");
    }
    body["chat_template_kwargs"] = std::move(std::get<Json>(k));
  }
  if (chat.has_add_generation_prompt()) body["add_generation_prompt"] = chat.add_generation_prompt();
  if (chat.has_continue_final_message()) body["continue_final_message"] = chat.continue_final_message();
  return std::nullopt;
}

}  // namespace

JsonOrError GenerateRequestToJson(const kaon::v1::GenerateRequest& r, const api::RequestLimits& limits) {
  Json body = Json::object();
  if (!r.model().empty()) body["model"] = r.model();
  const bool chat = r.input_case() == kaon::v1::GenerateRequest::kChat;
  switch (r.input_case()) {
    case kaon::v1::GenerateRequest::kText:
      body["prompt"] = r.text();
      break;
    case kaon::v1::GenerateRequest::kTokenIds:
      if (r.token_ids().ids_size() == 0) return api::InvalidRequest("token_ids", "token_ids must not be empty");
      body["prompt"] = Json(std::vector<int32_t>(r.token_ids().ids().begin(), r.token_ids().ids().end()));
      break;
    case kaon::v1::GenerateRequest::kChat:
      if (std::optional<api::ApiError> e = ChatToJson(r.chat(), limits, body)) return *e;
      break;
    default:
      return api::InvalidRequest("input", "one of text, chat or token_ids is required");
  }
  if (r.has_temperature()) body["temperature"] = r.temperature();
  if (r.has_top_p()) body["top_p"] = r.top_p();
  if (r.has_top_k()) body["top_k"] = r.top_k();
  if (r.has_min_p()) body["min_p"] = r.min_p();
  if (r.has_presence_penalty()) body["presence_penalty"] = r.presence_penalty();
  if (r.has_frequency_penalty()) body["frequency_penalty"] = r.frequency_penalty();
  if (r.has_repetition_penalty()) body["repetition_penalty"] = r.repetition_penalty();
  if (!r.logit_bias().empty()) {
    Json bias = Json::object();
    for (const auto& [id, value] : r.logit_bias()) bias[std::to_string(id)] = value;
    body["logit_bias"] = std::move(bias);
  }
  if (r.has_seed()) body["seed"] = r.seed();
  if (r.has_n()) body["n"] = r.n();
  if (r.has_max_tokens()) body["max_tokens"] = r.max_tokens();
  if (r.has_min_tokens()) body["min_tokens"] = r.min_tokens();
  if (r.stop_size() > 0) body["stop"] = Json(std::vector<std::string>(r.stop().begin(), r.stop().end()));
  if (r.stop_token_ids_size() > 0) {
    body["stop_token_ids"] = Json(std::vector<int32_t>(r.stop_token_ids().begin(), r.stop_token_ids().end()));
  }
  if (r.has_ignore_eos()) body["ignore_eos"] = r.ignore_eos();
  if (r.has_include_stop_str_in_output()) body["include_stop_str_in_output"] = r.include_stop_str_in_output();
  if (r.has_logprobs()) {
    // One field for both APIs: completions take the count as `logprobs`,
    // chat as `top_logprobs`; checked here so the message names ours.
    if (r.logprobs() < 0 || r.logprobs() > SamplingParams::kMaxLogprobs) {
      return api::InvalidRequest(
          "logprobs", absl::StrCat("logprobs must be in [0, ", SamplingParams::kMaxLogprobs, "], got ", r.logprobs()));
    }
    if (chat) {
      body["logprobs"] = true;
      body["top_logprobs"] = r.logprobs();
    } else {
      body["logprobs"] = r.logprobs();
    }
  }
  if (r.has_skip_special_tokens()) body["skip_special_tokens"] = r.skip_special_tokens();
  if (r.has_priority()) body["priority"] = r.priority();
  return body;
}

api::ParseResult ParseGenerateRequest(const kaon::v1::GenerateRequest& request, const api::ServingContext& ctx) {
  JsonOrError body = GenerateRequestToJson(request, ctx.limits);
  if (auto* e = std::get_if<api::ApiError>(&body)) return *e;
  const Json& j = std::get<Json>(body);
  api::ParseResult parsed = request.input_case() == kaon::v1::GenerateRequest::kChat
                                ? api::ParseChatRequest(j, ctx)
                                : api::ParseCompletionRequest(j, ctx);
  // "prompt" is the HTTP name; ours is the oneof member that was set.
  if (auto* e = std::get_if<api::ApiError>(&parsed); e && e->param == "prompt") {
    e->param = request.input_case() == kaon::v1::GenerateRequest::kText ? "text" : "token_ids";
  }
  return parsed;
}

JsonOrError TokenizeRequestToJson(const kaon::v1::TokenizeRequest& r, const api::RequestLimits& limits) {
  Json body = Json::object();
  if (!r.model().empty()) body["model"] = r.model();
  switch (r.input_case()) {
    case kaon::v1::TokenizeRequest::kText:
      body["prompt"] = r.text();
      break;
    case kaon::v1::TokenizeRequest::kChat:
      if (std::optional<api::ApiError> e = ChatToJson(r.chat(), limits, body)) return *e;
      break;
    default:
      return api::InvalidRequest("input", "one of text or chat is required");
  }
  if (r.has_add_special_tokens()) body["add_special_tokens"] = r.add_special_tokens();
  if (r.return_token_strs()) body["return_token_strs"] = true;
  return body;
}

void AppendEvent(const RequestOutput& event, kaon::v1::Choice* choice) {
  choice->set_index(event.index);
  choice->mutable_text()->append(event.text);
  for (int32_t id : event.token_ids) choice->add_token_ids(id);
  for (const SampleResult& s : event.logprobs) {
    kaon::v1::TokenLogprob* lp = choice->add_logprobs();
    lp->set_token_id(s.token);
    lp->set_logprob(s.logprob);
    for (const TokenLogprob& t : s.top) {
      kaon::v1::TopLogprob* top = lp->add_top();
      top->set_token_id(t.token);
      top->set_logprob(t.logprob);
    }
  }
  switch (event.finish_reason) {
    case FinishReason::kStop: choice->set_finish_reason(kaon::v1::FINISH_REASON_STOP); break;
    case FinishReason::kLength: choice->set_finish_reason(kaon::v1::FINISH_REASON_LENGTH); break;
    case FinishReason::kAbort: choice->set_finish_reason(kaon::v1::FINISH_REASON_ABORT); break;
    case FinishReason::kNone: break;
  }
  if (const auto* id = std::get_if<int32_t>(&event.stop_reason)) choice->set_stop_token_id(*id);
  if (const auto* s = std::get_if<std::string>(&event.stop_reason)) choice->set_stop_string(*s);
}

}  // namespace kaon::grpc_api
