// kaon.v1 requests → the typed request the HTTP parsers produce, field by
// field: unset fields take the same defaults (generation_config.json, then
// vLLM's), every set field reaches SamplingParams, chat input renders through
// the same template path, and a refusal carries the shared rule's message
// with the proto field as its param.
#include "server/grpc/proto_convert.h"

#include <memory>

#include "gtest/gtest.h"
#include "server/api/completion_request.h"
#include "server/template/chat_template.h"
#include "tests/api/api_test_util.h"

namespace kaon::grpc_api {
namespace {

using Json = nlohmann::ordered_json;
using api::testing::ErrorOf;
using api::testing::RequestOf;
using api::testing::StoriesContext;

kaon::v1::GenerateRequest Text(const std::string& text) {
  kaon::v1::GenerateRequest r;
  r.set_text(text);
  return r;
}

TEST(ProtoConvert, UnsetFieldsTakeTheDefaults) {
  const api::ServingContext ctx = StoriesContext();
  const api::ParsedRequest p = RequestOf(ParseGenerateRequest(Text("Once upon a time"), ctx));
  EXPECT_EQ(p.kind, api::RequestKind::kCompletion);
  ASSERT_EQ(p.prompts.size(), 1u);
  EXPECT_EQ(p.prompts[0], (std::vector<int32_t>{1, 403, 407, 261, 378}));  // with BOS, as /v1/completions
  EXPECT_EQ(p.model, "stories260k");
  const SamplingParams d;
  EXPECT_FLOAT_EQ(p.params.temperature, d.temperature);
  EXPECT_FLOAT_EQ(p.params.top_p, d.top_p);
  EXPECT_EQ(p.params.n, 1);
  EXPECT_EQ(p.params.logprobs, -1);
  EXPECT_EQ(p.params.max_tokens, 16);
  EXPECT_TRUE(p.params.skip_special_tokens);
  // The same request over HTTP parses to the same values.
  const api::ParsedRequest h = RequestOf(api::ParseCompletionRequest({{"prompt", "Once upon a time"}}, ctx));
  EXPECT_EQ(h.prompts, p.prompts);
  EXPECT_EQ(h.params.max_tokens, p.params.max_tokens);
}

TEST(ProtoConvert, GenerationConfigDefaultsUnderRequestFields) {
  api::ServingContext ctx = StoriesContext();
  ctx.generation.temperature = 0.0f;
  ctx.generation.top_p = 0.5f;
  kaon::v1::GenerateRequest r = Text("x");
  EXPECT_FLOAT_EQ(RequestOf(ParseGenerateRequest(r, ctx)).params.temperature, 0.0f);
  r.set_temperature(0.7f);
  const api::ParsedRequest p = RequestOf(ParseGenerateRequest(r, ctx));
  EXPECT_FLOAT_EQ(p.params.temperature, 0.7f);
  EXPECT_FLOAT_EQ(p.params.top_p, 0.5f);
}

TEST(ProtoConvert, EverySamplingFieldMaps) {
  kaon::v1::GenerateRequest r;
  r.set_model("stories260k");
  r.mutable_token_ids()->add_ids(5);
  r.mutable_token_ids()->add_ids(6);
  r.set_temperature(0);  // set to zero differs from unset
  r.set_top_p(0.5f);
  r.set_top_k(3);
  r.set_min_p(0.25f);
  r.set_presence_penalty(0.5f);
  r.set_frequency_penalty(-0.5f);
  r.set_repetition_penalty(1.5f);
  (*r.mutable_logit_bias())[7] = -100;
  r.set_seed(-3);
  r.set_n(2);
  r.set_max_tokens(9);
  r.set_min_tokens(1);
  r.add_stop("x");
  r.add_stop_token_ids(4);
  r.set_ignore_eos(true);
  r.set_include_stop_str_in_output(true);
  r.set_logprobs(3);
  r.set_skip_special_tokens(false);
  r.set_priority(-1);
  const api::ParsedRequest p = RequestOf(ParseGenerateRequest(r, StoriesContext()));
  EXPECT_EQ(p.prompts[0], (std::vector<int32_t>{5, 6}));  // used as given
  const SamplingParams& s = p.params;
  EXPECT_FLOAT_EQ(s.temperature, 0.0f);
  EXPECT_FLOAT_EQ(s.top_p, 0.5f);
  EXPECT_EQ(s.top_k, 3);
  EXPECT_FLOAT_EQ(s.min_p, 0.25f);
  EXPECT_FLOAT_EQ(s.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(s.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(s.repetition_penalty, 1.5f);
  EXPECT_EQ(s.logit_bias, (std::vector<std::pair<int32_t, float>>{{7, -100.0f}}));
  EXPECT_EQ(s.seed, static_cast<uint64_t>(int64_t{-3}));
  EXPECT_EQ(s.n, 2);
  EXPECT_EQ(s.max_tokens, 9);
  EXPECT_EQ(s.min_tokens, 1);
  EXPECT_EQ(s.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(s.stop_token_ids, std::vector<int32_t>{4});
  EXPECT_TRUE(s.ignore_eos);
  EXPECT_TRUE(s.include_stop_str_in_output);
  EXPECT_EQ(s.logprobs, 3);
  EXPECT_FALSE(s.skip_special_tokens);
  EXPECT_EQ(p.priority, -1);
}

TEST(ProtoConvert, ChatRendersMessagesToolsAndKwargs) {
  auto tmpl = ChatTemplate::Parse(
      "{% for m in messages %}{{ m.role }}:{{ m.content }}"
      "{% if m.tool_calls %}{{ m.tool_calls[0].function.arguments|tojson }}{% endif %}"
      "{% if m.tool_call_id %}@{{ m.tool_call_id }}{% endif %}|{% endfor %}"
      "{{ tools|tojson }}|{{ enable_thinking }}|{{ add_generation_prompt }}");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  api::ServingContext ctx = StoriesContext(4096);
  ctx.chat_template = tmpl->get();
  kaon::v1::GenerateRequest r;
  kaon::v1::ChatInput* chat = r.mutable_chat();
  kaon::v1::ChatMessage* user = chat->add_messages();
  user->set_role("user");
  user->set_content("weather?");
  kaon::v1::ChatMessage* assistant = chat->add_messages();
  assistant->set_role("assistant");  // content unset: an empty string for the template
  kaon::v1::ToolCall* call = assistant->add_tool_calls();
  call->set_id("c1");
  call->mutable_function()->set_name("get");
  call->mutable_function()->set_arguments(R"({"city": "Paris"})");
  kaon::v1::ChatMessage* tool = chat->add_messages();
  tool->set_role("tool");
  tool->set_content("sunny");
  tool->set_tool_call_id("c1");
  chat->add_tools(R"({"type": "function", "function": {"name": "get", "parameters": {"b": 1, "a": 2}}})");
  chat->set_chat_template_kwargs(R"({"enable_thinking": false})");
  r.set_logprobs(2);
  const api::ParsedRequest p = RequestOf(ParseGenerateRequest(r, ctx));
  EXPECT_EQ(p.kind, api::RequestKind::kChat);
  // Arguments parsed into an object (tojson prints it once); tool key order kept.
  EXPECT_EQ(p.rendered_chat_prompt,
            R"(user:weather?|assistant:{"city": "Paris"}|tool:sunny@c1|)"
            R"([{"type": "function", "function": {"name": "get", "parameters": {"b": 1, "a": 2}}}]|False|True)");
  EXPECT_EQ(p.prompts[0], StoriesContext().tokenizer->Encode(p.rendered_chat_prompt, false));  // no BOS added
  EXPECT_EQ(p.params.logprobs, 2);  // the count of alternatives, as chat's top_logprobs
  EXPECT_EQ(p.params.max_tokens, 4096 - static_cast<int64_t>(p.prompts[0].size()));  // chat's default

  chat->set_tool_choice("none");  // the template does not see the tools
  EXPECT_NE(RequestOf(ParseGenerateRequest(r, ctx)).rendered_chat_prompt.find("|null|"), std::string::npos);
}

TEST(ProtoConvert, RefusalsCarryTheSharedMessageAndTheProtoField) {
  const api::ServingContext ctx = StoriesContext();
  EXPECT_EQ(ErrorOf(ParseGenerateRequest(kaon::v1::GenerateRequest{}, ctx)).param, "input");

  kaon::v1::GenerateRequest tools;
  tools.mutable_chat()->add_tools("[1]");
  EXPECT_EQ(ErrorOf(ParseGenerateRequest(tools, ctx)).param, "tools");

  kaon::v1::GenerateRequest empty_ids;
  empty_ids.mutable_token_ids();
  api::ApiError e = ErrorOf(ParseGenerateRequest(empty_ids, ctx));
  EXPECT_EQ(e.param, "token_ids");
  EXPECT_EQ(e.message, "the prompt must contain at least one token");

  kaon::v1::GenerateRequest model = Text("x");
  model.set_model("other");
  EXPECT_EQ(ErrorOf(ParseGenerateRequest(model, ctx)).http_status, 404);

  kaon::v1::GenerateRequest long_text = Text("x");
  long_text.set_max_tokens(1000);
  e = ErrorOf(ParseGenerateRequest(long_text, ctx));
  EXPECT_EQ(e.param, "text");
  EXPECT_EQ(e.code, "context_length_exceeded");

  // Word for word what HTTP answers for the same values.
  kaon::v1::GenerateRequest top_p = Text("x");
  top_p.set_top_p(0);
  e = ErrorOf(ParseGenerateRequest(top_p, ctx));
  const api::ApiError http = ErrorOf(api::ParseCompletionRequest({{"prompt", "x"}, {"top_p", 0}}, ctx));
  EXPECT_EQ(e.param, "top_p");
  EXPECT_EQ(e.message, http.message);

  kaon::v1::GenerateRequest logprobs = Text("x");
  logprobs.set_logprobs(25);
  e = ErrorOf(ParseGenerateRequest(logprobs, ctx));
  EXPECT_EQ(e.param, "logprobs");
  EXPECT_EQ(e.message, "logprobs must be in [0, 20], got 25");

  kaon::v1::GenerateRequest stops = Text("x");
  for (int i = 0; i < 17; ++i) stops.add_stop("s");
  e = ErrorOf(ParseGenerateRequest(stops, ctx));
  EXPECT_EQ(e.param, "stop");
  EXPECT_EQ(e.message, ErrorOf(api::ParseCompletionRequest({{"prompt", "x"}, {"stop", Json(std::vector<std::string>(17, "s"))}}, ctx)).message);
}

TEST(ProtoConvert, TokenizeAndDetokenize) {
  const api::ServingContext ctx = StoriesContext();
  kaon::v1::TokenizeRequest t;
  t.set_text("Once upon a time");
  t.set_return_token_strs(true);
  auto tokens = RunTokenize(t, ctx);
  ASSERT_TRUE(std::holds_alternative<api::TokenizeResult>(tokens));
  EXPECT_EQ(std::get<api::TokenizeResult>(tokens).ids, (std::vector<int32_t>{1, 403, 407, 261, 378}));
  EXPECT_EQ(std::get<api::TokenizeResult>(tokens).token_strs->size(), 5u);
  t.set_add_special_tokens(false);
  EXPECT_EQ(std::get<api::TokenizeResult>(RunTokenize(t, ctx)).ids.size(), 4u);
  EXPECT_EQ(std::get<api::ApiError>(RunTokenize(kaon::v1::TokenizeRequest{}, ctx)).param, "input");

  kaon::v1::DetokenizeRequest d;
  d.add_tokens(403);
  d.add_tokens(407);
  auto text = RunDetokenize(d, ctx);
  ASSERT_TRUE(std::holds_alternative<std::string>(text));
  EXPECT_EQ(std::get<std::string>(text), StoriesContext().tokenizer->Decode(std::vector<int32_t>{403, 407}, false));
  d.add_tokens(512);
  EXPECT_EQ(std::get<api::ApiError>(RunDetokenize(d, ctx)).message, "token id 512 is out of range [0, 512)");
}

TEST(ProtoConvert, EventsAppendToAChoice) {
  kaon::v1::Choice c;
  RequestOutput a;
  a.index = 1;
  a.token_ids = {5};
  a.text = "He";
  a.logprobs = {SampleResult{5, -0.5f, {{5, -0.5f}, {6, -1.0f}}}};
  AppendEvent(a, &c);
  RequestOutput b;
  b.index = 1;
  b.token_ids = {7};
  b.text = "llo";
  b.logprobs = {SampleResult{7, -0.25f, {}}};
  b.finish_reason = FinishReason::kStop;
  b.stop_reason = std::string("!");
  AppendEvent(b, &c);
  EXPECT_EQ(c.index(), 1);
  EXPECT_EQ(c.text(), "Hello");
  ASSERT_EQ(c.token_ids_size(), 2);
  EXPECT_EQ(c.token_ids(1), 7);
  ASSERT_EQ(c.logprobs_size(), 2);
  EXPECT_EQ(c.logprobs(0).top_size(), 2);
  EXPECT_EQ(c.logprobs(0).top(1).token_id(), 6);
  EXPECT_EQ(c.finish_reason(), kaon::v1::FINISH_REASON_STOP);
  EXPECT_EQ(c.stop_string(), "!");
}

}  // namespace
}  // namespace kaon::grpc_api
