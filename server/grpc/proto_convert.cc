#include "server/grpc/proto_convert.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/api/chat_messages.h"
#include "server/api/chat_request.h"
#include "server/api/common_fields.h"
#include "server/api/request_body.h"
#include "server/engine/sampling_params.h"
#include "server/tokenizer/tokenizer.h"

namespace kaon::grpc_api {
namespace {

using Json = nlohmann::ordered_json;

// The chat input as api::RenderChat takes it. The messages become the
// template's message values (the shape NormalizeChatMessages checks, as for
// HTTP); tools and chat_template_kwargs arrive as JSON text and are parsed
// within the request limits. The counts are checked first, with the shared
// rules' messages, so a huge list costs nothing.
std::optional<api::ApiError> ReadChat(const kaon::v1::ChatInput& chat, const api::RequestLimits& limits,
                                      Json* messages, api::ChatPromptFields* f) {
  if (auto e = api::CheckMessageCount(static_cast<size_t>(chat.messages_size()), limits)) return e;
  if (auto e = api::CheckToolCount(static_cast<size_t>(chat.tools_size()), limits)) return e;
  *messages = Json::array();
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
    messages->push_back(std::move(msg));
  }
  f->messages = messages;
  if (chat.tools_size() > 0) {
    f->tools = Json::array();
    for (int i = 0; i < chat.tools_size(); ++i) {
      const std::string field = absl::StrCat("tools[", i, "]");
      std::variant<Json, api::ApiError> t = api::ParseJsonText(chat.tools(i), limits, field);
      if (auto* e = std::get_if<api::ApiError>(&t)) {
        e->param = "tools";
        return *e;
      }
      if (!std::get<Json>(t).is_object()) return api::InvalidRequest("tools", field + " must be a JSON object text");
      f->tools.push_back(std::move(std::get<Json>(t)));
    }
  }
  if (chat.has_tool_choice()) f->tool_choice = chat.tool_choice();
  if (chat.has_chat_template_kwargs()) {
    std::variant<Json, api::ApiError> k = api::ParseJsonText(chat.chat_template_kwargs(), limits, "chat_template_kwargs");
    if (auto* e = std::get_if<api::ApiError>(&k)) return *e;
    if (!std::get<Json>(k).is_object()) {
      return api::InvalidRequest("chat_template_kwargs", "chat_template_kwargs must be a JSON object text");
    }
    f->chat_template_kwargs = std::move(std::get<Json>(k));
  }
  if (chat.has_add_generation_prompt()) f->add_generation_prompt = chat.add_generation_prompt();
  if (chat.has_continue_final_message()) f->continue_final_message = chat.continue_final_message();
  return std::nullopt;
}

std::variant<std::string, api::ApiError> RenderChat(const kaon::v1::ChatInput& chat, const api::ServingContext& ctx) {
  Json messages;
  api::ChatPromptFields f;
  if (std::optional<api::ApiError> e = ReadChat(chat, ctx.limits, &messages, &f)) return *e;
  return api::RenderChat(std::move(f), ctx);
}

// The sampling fields: the model's defaults, then every field the request set.
void ReadSampling(const kaon::v1::GenerateRequest& r, const api::ServingContext& ctx, SamplingParams* p) {
  ApplyGenerationDefaults(ctx.generation, p);
  if (r.has_temperature()) p->temperature = r.temperature();
  if (r.has_top_p()) p->top_p = r.top_p();
  if (r.has_top_k()) p->top_k = r.top_k();
  if (r.has_min_p()) p->min_p = r.min_p();
  if (r.has_presence_penalty()) p->presence_penalty = r.presence_penalty();
  if (r.has_frequency_penalty()) p->frequency_penalty = r.frequency_penalty();
  if (r.has_repetition_penalty()) p->repetition_penalty = r.repetition_penalty();
  // The map's order is unspecified; the sampler adds every entry, so it does not matter.
  for (const auto& [id, bias] : r.logit_bias()) p->logit_bias.emplace_back(id, bias);
  // Negative seeds are distinct seeds, as over HTTP.
  if (r.has_seed()) p->seed = static_cast<uint64_t>(r.seed());
  if (r.has_n()) p->n = r.n();
  if (r.has_max_tokens()) p->max_tokens = r.max_tokens();
  if (r.has_min_tokens()) p->min_tokens = r.min_tokens();
  p->stop.assign(r.stop().begin(), r.stop().end());
  p->stop_token_ids.assign(r.stop_token_ids().begin(), r.stop_token_ids().end());
  if (r.has_ignore_eos()) p->ignore_eos = r.ignore_eos();
  if (r.has_include_stop_str_in_output()) p->include_stop_str_in_output = r.include_stop_str_in_output();
  // One field for both inputs: the number of alternatives (chat's top_logprobs).
  if (r.has_logprobs()) p->logprobs = r.logprobs();
  if (r.has_skip_special_tokens()) p->skip_special_tokens = r.skip_special_tokens();
}

}  // namespace

api::ParseResult ParseGenerateRequest(const kaon::v1::GenerateRequest& r, const api::ServingContext& ctx) {
  api::ParsedRequest out;
  out.model = ctx.served_model_name;
  if (!r.model().empty()) {
    if (std::optional<api::ApiError> e = api::CheckModelName(r.model(), ctx)) return *e;
  }
  api::FieldNames names;
  switch (r.input_case()) {
    case kaon::v1::GenerateRequest::kText:
      names.prompt = "text";
      out.prompts.push_back(ctx.tokenizer->Encode(r.text(), /*add_special_tokens=*/true));
      break;
    case kaon::v1::GenerateRequest::kTokenIds:
      names.prompt = "token_ids";
      out.prompts.emplace_back(r.token_ids().ids().begin(), r.token_ids().ids().end());
      break;
    case kaon::v1::GenerateRequest::kChat: {
      out.kind = api::RequestKind::kChat;
      names.prompt = "messages";
      names.chat_default_max_tokens = true;
      std::variant<std::string, api::ApiError> prompt = RenderChat(r.chat(), ctx);
      if (auto* e = std::get_if<api::ApiError>(&prompt)) return *e;
      out.rendered_chat_prompt = std::move(std::get<std::string>(prompt));
      out.prompts.push_back(ctx.tokenizer->Encode(out.rendered_chat_prompt, /*add_special_tokens=*/false));
      break;
    }
    default:
      return api::InvalidRequest("input", "one of text, chat or token_ids is required");
  }
  ReadSampling(r, ctx, &out.params);
  if (r.has_priority()) out.priority = r.priority();
  if (std::optional<api::ApiError> e = api::FinishCommonFields(ctx, r.has_max_tokens(), out, names)) return *e;
  return out;
}

std::variant<api::TokenizeResult, api::ApiError> RunTokenize(const kaon::v1::TokenizeRequest& r,
                                                             const api::ServingContext& ctx) {
  if (!r.model().empty()) {
    if (std::optional<api::ApiError> e = api::CheckModelName(r.model(), ctx)) return *e;
  }
  std::string text;
  // As over HTTP: a rendered chat prompt already holds its special tokens.
  bool add_special_tokens = true;
  switch (r.input_case()) {
    case kaon::v1::TokenizeRequest::kText:
      text = r.text();
      break;
    case kaon::v1::TokenizeRequest::kChat: {
      add_special_tokens = false;
      std::variant<std::string, api::ApiError> prompt = RenderChat(r.chat(), ctx);
      if (auto* e = std::get_if<api::ApiError>(&prompt)) return *e;
      text = std::move(std::get<std::string>(prompt));
      break;
    }
    default:
      return api::InvalidRequest("input", "one of text or chat is required");
  }
  if (r.has_add_special_tokens()) add_special_tokens = r.add_special_tokens();
  return api::TokenizeText(text, add_special_tokens, r.return_token_strs(), ctx);
}

std::variant<std::string, api::ApiError> RunDetokenize(const kaon::v1::DetokenizeRequest& r,
                                                       const api::ServingContext& ctx) {
  if (!r.model().empty()) {
    if (std::optional<api::ApiError> e = api::CheckModelName(r.model(), ctx)) return *e;
  }
  return api::DetokenizeIds(std::vector<int64_t>(r.tokens().begin(), r.tokens().end()), ctx);
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
