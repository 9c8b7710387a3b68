// GenerateRequest → the HTTP API's JSON body: every field lands under the
// HTTP name with the HTTP meaning, unset fields stay absent (so the server's
// defaults apply), and chat messages keep their shape for the template.
#include "server/grpc/proto_convert.h"

#include "gtest/gtest.h"

namespace kaon::grpc_api {
namespace {

using Json = nlohmann::ordered_json;

Json ToJson(const kaon::v1::GenerateRequest& r) {
  auto v = GenerateRequestToJson(r, api::RequestLimits{});
  if (auto* e = std::get_if<api::ApiError>(&v)) {
    ADD_FAILURE() << e->message;
    return nullptr;
  }
  return std::get<Json>(v);
}

TEST(ProtoConvert, UnsetFieldsStayAbsent) {
  kaon::v1::GenerateRequest r;
  r.set_text("Hi");
  EXPECT_EQ(ToJson(r), Json({{"prompt", "Hi"}}));
}

TEST(ProtoConvert, EverySamplingFieldMaps) {
  kaon::v1::GenerateRequest r;
  r.set_model("m");
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
  const Json j = ToJson(r);
  EXPECT_EQ(j["model"], "m");
  EXPECT_EQ(j["prompt"], Json::array({5, 6}));
  EXPECT_EQ(j["temperature"], 0.0);
  EXPECT_EQ(j["top_p"], 0.5);
  EXPECT_EQ(j["top_k"], 3);
  EXPECT_EQ(j["min_p"], 0.25);
  EXPECT_EQ(j["presence_penalty"], 0.5);
  EXPECT_EQ(j["frequency_penalty"], -0.5);
  EXPECT_EQ(j["repetition_penalty"], 1.5);
  EXPECT_EQ(j["logit_bias"], Json({{"7", -100.0}}));
  EXPECT_EQ(j["seed"], -3);
  EXPECT_EQ(j["n"], 2);
  EXPECT_EQ(j["max_tokens"], 9);
  EXPECT_EQ(j["min_tokens"], 1);
  EXPECT_EQ(j["stop"], Json::array({"x"}));
  EXPECT_EQ(j["stop_token_ids"], Json::array({4}));
  EXPECT_EQ(j["ignore_eos"], true);
  EXPECT_EQ(j["include_stop_str_in_output"], true);
  EXPECT_EQ(j["logprobs"], 3);  // completions: the number of alternatives
  EXPECT_EQ(j["skip_special_tokens"], false);
  EXPECT_EQ(j["priority"], -1);
}

TEST(ProtoConvert, ChatKeepsMessagesToolsAndKwargs) {
  kaon::v1::GenerateRequest r;
  kaon::v1::ChatInput* chat = r.mutable_chat();
  kaon::v1::ChatMessage* user = chat->add_messages();
  user->set_role("user");
  user->set_content("weather?");
  kaon::v1::ChatMessage* assistant = chat->add_messages();
  assistant->set_role("assistant");  // content unset: null
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
  chat->set_add_generation_prompt(true);
  r.set_logprobs(2);
  const Json j = ToJson(r);
  EXPECT_EQ(j["messages"][0], Json({{"role", "user"}, {"content", "weather?"}}));
  EXPECT_TRUE(j["messages"][1]["content"].is_null());
  EXPECT_EQ(j["messages"][1]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(j["messages"][1]["tool_calls"][0]["function"]["arguments"], R"({"city": "Paris"})");
  EXPECT_EQ(j["messages"][2]["tool_call_id"], "c1");
  // Key order survives (templates print tools with tojson).
  EXPECT_EQ(j["tools"][0]["function"]["parameters"].dump(), R"({"b":1,"a":2})");
  EXPECT_EQ(j["chat_template_kwargs"], Json({{"enable_thinking", false}}));
  EXPECT_EQ(j["add_generation_prompt"], true);
  // Chat: logprobs is a flag and the count is top_logprobs.
  EXPECT_EQ(j["logprobs"], true);
  EXPECT_EQ(j["top_logprobs"], 2);
}

TEST(ProtoConvert, BadInputsNameTheField) {
  kaon::v1::GenerateRequest none;
  auto v = GenerateRequestToJson(none, api::RequestLimits{});
  ASSERT_TRUE(std::holds_alternative<api::ApiError>(v));
  EXPECT_EQ(std::get<api::ApiError>(v).param, "input");

  kaon::v1::GenerateRequest tools;
  tools.mutable_chat()->add_tools("[1]");
  v = GenerateRequestToJson(tools, api::RequestLimits{});
  ASSERT_TRUE(std::holds_alternative<api::ApiError>(v));
  EXPECT_EQ(std::get<api::ApiError>(v).param, "tools");

  kaon::v1::GenerateRequest empty_ids;
  empty_ids.mutable_token_ids();
  v = GenerateRequestToJson(empty_ids, api::RequestLimits{});
  ASSERT_TRUE(std::holds_alternative<api::ApiError>(v));
  EXPECT_EQ(std::get<api::ApiError>(v).param, "token_ids");
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
