// /v1/completions parsing: prompt forms, defaults, every rejected field with
// its status and param, and the shared sampling fields.
#include "server/api/completion_request.h"

#include "tests/api/api_test_util.h"

namespace kaon::api {
namespace {

using nlohmann::ordered_json;
using testing::ErrorOf;
using testing::RequestOf;
using testing::StoriesContext;

ParseResult Parse(const ordered_json& body, int64_t max_model_len = 256) {
  return ParseCompletionRequest(body, StoriesContext(max_model_len));
}

TEST(CompletionRequest, StringPromptGetsBosAndDefaults) {
  const ParseResult r = Parse({{"model", "stories260k"}, {"prompt", "Once upon a time"}});
  const ParsedRequest& p = RequestOf(r);
  EXPECT_EQ(p.kind, RequestKind::kCompletion);
  ASSERT_EQ(p.prompts.size(), 1u);
  EXPECT_EQ(p.prompts[0], (std::vector<int32_t>{1, 403, 407, 261, 378}));
  EXPECT_TRUE(p.prompt_texts.empty());  // kept only for echo
  EXPECT_EQ(p.params.max_tokens, 16);  // OpenAI's default for completions
  EXPECT_EQ(p.params.n, 1);
  EXPECT_EQ(p.params.logprobs, -1);
  EXPECT_FALSE(p.stream);
  EXPECT_FALSE(p.echo);
  EXPECT_EQ(p.model, "stories260k");
}

TEST(CompletionRequest, PromptForms) {
  const ParsedRequest a = RequestOf(Parse({{"prompt", {"Once", "upon"}}, {"echo", true}}));
  EXPECT_EQ(a.prompts.size(), 2u);
  EXPECT_EQ(a.prompt_texts[1], "upon");
  const ParsedRequest b = RequestOf(Parse({{"prompt", {1, 403, 407}}, {"echo", true}}));
  ASSERT_EQ(b.prompts.size(), 1u);
  EXPECT_EQ(b.prompts[0], (std::vector<int32_t>{1, 403, 407}));
  EXPECT_FALSE(b.prompt_texts[0].empty());
  const ParsedRequest c = RequestOf(Parse({{"prompt", {{1, 403}, {1, 407, 261}}}}));
  ASSERT_EQ(c.prompts.size(), 2u);
  EXPECT_EQ(c.prompts[1], (std::vector<int32_t>{1, 407, 261}));
  // The model field may be left out: it defaults to the served model.
  EXPECT_EQ(RequestOf(Parse({{"prompt", "x"}})).model, "stories260k");
}

TEST(CompletionRequest, BadPromptForms) {
  for (const ordered_json& prompt : {ordered_json(5), ordered_json::array(), ordered_json({1, "a"}),
                                     ordered_json({"a", 1}), ordered_json({{1, 2}, {}}), ordered_json({1.5}),
                                     ordered_json({{1}, "a"}), ordered_json({true})}) {
    const ApiError& e = ErrorOf(Parse({{"prompt", prompt}}));
    EXPECT_EQ(e.http_status, 400) << prompt;
    EXPECT_EQ(e.param, "prompt") << prompt;
  }
  EXPECT_EQ(ErrorOf(Parse(ordered_json::object())).param, "prompt");
  const ApiError& vocab = ErrorOf(Parse({{"prompt", {1, 512}}}));
  EXPECT_EQ(vocab.param, "prompt");
  EXPECT_NE(vocab.message.find("512"), std::string::npos);
  EXPECT_EQ(ErrorOf(ParseCompletionRequest(ordered_json::array(), StoriesContext())).http_status, 400);
}

TEST(CompletionRequest, UnknownModelIs404) {
  const ApiError& e = ErrorOf(Parse({{"model", "gpt-4"}, {"prompt", "x"}, {"temperature", "hot"}}));
  EXPECT_EQ(e.http_status, 404);
  EXPECT_EQ(e.type, "not_found_error");
  EXPECT_EQ(e.param, "model");
  EXPECT_EQ(e.message, "The model `gpt-4` does not exist.");
  EXPECT_EQ(ErrorOf(Parse({{"model", 3}, {"prompt", "x"}})).http_status, 400);
}

struct BadField {
  ordered_json field;
  const char* param;
  const char* message_part;
};

TEST(CompletionRequest, EveryBadFieldNamesItsParam) {
  const BadField cases[] = {
      {{{"temperature", "hot"}}, "temperature", "temperature must be a number"},
      {{{"temperature", -1}}, "temperature", "temperature"},
      {{{"top_p", 0}}, "top_p", "top_p must be in (0, 1]"},
      {{{"top_p", 1.5}}, "top_p", "top_p"},
      {{{"top_k", -2}}, "top_k", "top_k"},
      {{{"top_k", 1.5}}, "top_k", "top_k must be an integer"},
      {{{"min_p", 2}}, "min_p", "min_p"},
      {{{"n", 0}}, "n", "n must be in"},
      {{{"n", 1000}}, "n", "n must be in"},
      {{{"n", "2"}}, "n", "n must be an integer"},
      {{{"n", 2}, {"best_of", 1}}, "best_of", "best_of"},
      {{{"presence_penalty", 3}}, "presence_penalty", "presence_penalty"},
      {{{"frequency_penalty", -3}}, "frequency_penalty", "frequency_penalty"},
      {{{"repetition_penalty", 0}}, "repetition_penalty", "repetition_penalty"},
      {{{"logprobs", 21}}, "logprobs", "logprobs must be in [0, 20]"},
      {{{"logprobs", true}}, "logprobs", "logprobs must be an integer"},
      {{{"max_tokens", 0}}, "max_tokens", "max_tokens must be at least 1"},
      {{{"max_tokens", "10"}}, "max_tokens", "max_tokens must be an integer"},
      {{{"max_completion_tokens", -1}}, "max_tokens", "max_tokens"},
      {{{"min_tokens", 20}, {"max_tokens", 10}}, "min_tokens", "min_tokens"},
      {{{"stop", 5}}, "stop", "stop must be a string or a list of strings"},
      {{{"stop", {"a", 1}}}, "stop", "stop must be"},
      {{{"stop", {"a", ""}}}, "stop", "must not be empty"},
      {{{"stop", ""}}, "stop", "must not be empty"},
      {{{"stop", std::vector<std::string>(17, "x")}}, "stop", "at most 16"},
      {{{"stop_token_ids", {1, "a"}}}, "stop_token_ids", "stop_token_ids"},
      {{{"stop_token_ids", {9999}}}, "stop_token_ids", "outside the vocabulary"},
      {{{"logit_bias", {{"abc", 1}}}}, "logit_bias", "token ids"},
      {{{"logit_bias", {{"5", "x"}}}}, "logit_bias", "must be a number"},
      {{{"logit_bias", {{"9999", 1}}}}, "logit_bias", "outside the vocabulary"},
      {{{"logit_bias", {1, 2}}}, "logit_bias", "must be an object"},
      {{{"seed", "x"}}, "seed", "seed must be an integer"},
      {{{"ignore_eos", 1}}, "ignore_eos", "ignore_eos must be a boolean"},
      {{{"stream", "yes"}}, "stream", "stream must be a boolean"},
      {{{"stream_options", {{"include_usage", true}}}}, "stream_options", "only allowed when stream"},
      {{{"stream", true}, {"stream_options", {{"include_usage", 1}}}}, "stream_options", "include_usage"},
      {{{"echo", "no"}}, "echo", "echo must be a boolean"},
      {{{"suffix", "tail"}}, "suffix", "not supported"},
      {{{"response_format", {{"type", "json_object"}}}}, "response_format", "not supported yet"},
      {{{"response_format", "text"}}, "response_format", "response_format"},
      {{{"priority", "high"}}, "priority", "priority must be an integer"},
      {{{"user", 5}}, "user", "user must be a string"},
      {{{"skip_special_tokens", "no"}}, "skip_special_tokens", "boolean"},
      {{{"include_stop_str_in_output", 0}}, "include_stop_str_in_output", "boolean"},
  };
  for (const BadField& c : cases) {
    ordered_json body = {{"model", "stories260k"}, {"prompt", "Once upon a time"}};
    for (auto it = c.field.begin(); it != c.field.end(); ++it) body[it.key()] = it.value();
    const ApiError& e = ErrorOf(Parse(body));
    EXPECT_EQ(e.http_status, 400) << c.field;
    EXPECT_EQ(e.type, "invalid_request_error") << c.field;
    EXPECT_EQ(e.param, c.param) << c.field << ": " << e.message;
    EXPECT_NE(e.message.find(c.message_part), std::string::npos) << c.field << ": " << e.message;
  }
}

TEST(CompletionRequest, MaxTokensNearTwoToThe63IsRefusedNotWrapped) {
  // prompt + max_tokens overflowed int64 and passed the context check.
  for (int64_t max_tokens : {INT64_MAX, INT64_MAX - 3, int64_t{1} << 62}) {
    const ApiError& e = ErrorOf(Parse({{"prompt", "Once upon a time"}, {"max_tokens", max_tokens}}, 64));
    EXPECT_EQ(e.http_status, 400) << max_tokens;
    EXPECT_EQ(e.code, "context_length_exceeded") << max_tokens;
    EXPECT_NE(e.message.find("maximum context length is 64 tokens"), std::string::npos) << e.message;
  }
}

TEST(CompletionRequest, ContextLengthErrorGivesTokenCounts) {
  const ApiError& e = ErrorOf(Parse({{"prompt", "Once upon a time"}, {"max_tokens", 100}}, 64));
  EXPECT_EQ(e.http_status, 400);
  EXPECT_EQ(e.param, "prompt");
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_EQ(e.message,
            "This model's maximum context length is 64 tokens. However, you requested 105 tokens (5 in the "
            "prompt, 100 for the completion). Please reduce the prompt or max_tokens.");
  // Exactly filling the context is fine.
  EXPECT_TRUE(std::holds_alternative<ParsedRequest>(Parse({{"prompt", "Once upon a time"}, {"max_tokens", 59}}, 64)));
}

TEST(CompletionRequest, SharedFieldsReachSamplingParams) {
  const ordered_json body = {
      {"model", "stories260k"}, {"prompt", "Once"}, {"max_tokens", 20.0}, {"temperature", 0.5},
      {"top_p", 0.9}, {"top_k", 40}, {"min_p", 0.05}, {"n", 2}, {"best_of", 3}, {"seed", -1},
      {"stop", "end"}, {"stop_token_ids", {2}}, {"presence_penalty", 0.5}, {"frequency_penalty", -0.5},
      {"repetition_penalty", 1.1}, {"logit_bias", {{"7", -100}, {"9", 2.5}}}, {"ignore_eos", true},
      {"min_tokens", 3}, {"skip_special_tokens", false}, {"include_stop_str_in_output", true},
      {"logprobs", 2}, {"echo", true}, {"stream", true}, {"stream_options", {{"include_usage", true}}},
      {"priority", -4}, {"user", "u1"}, {"response_format", {{"type", "text"}}}, {"unknown_field", {1, 2}},
      {"top_logprobs", nullptr}};
  const ParsedRequest& p = RequestOf(Parse(body));
  const SamplingParams& s = p.params;
  EXPECT_EQ(s.max_tokens, 20);
  EXPECT_FLOAT_EQ(s.temperature, 0.5f);
  EXPECT_FLOAT_EQ(s.top_p, 0.9f);
  EXPECT_EQ(s.top_k, 40);
  EXPECT_FLOAT_EQ(s.min_p, 0.05f);
  EXPECT_EQ(s.n, 2);
  EXPECT_EQ(s.best_of, 3);
  EXPECT_EQ(s.seed, static_cast<uint64_t>(-1));
  EXPECT_EQ(s.stop, std::vector<std::string>{"end"});
  EXPECT_EQ(s.stop_token_ids, std::vector<int32_t>{2});
  EXPECT_FLOAT_EQ(s.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(s.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(s.repetition_penalty, 1.1f);
  ASSERT_EQ(s.logit_bias.size(), 2u);
  EXPECT_EQ(s.logit_bias[0], (std::pair<int32_t, float>{7, -100.0f}));
  EXPECT_EQ(s.logit_bias[1], (std::pair<int32_t, float>{9, 2.5f}));
  EXPECT_TRUE(s.ignore_eos);
  EXPECT_EQ(s.min_tokens, 3);
  EXPECT_FALSE(s.skip_special_tokens);
  EXPECT_TRUE(s.include_stop_str_in_output);
  EXPECT_EQ(s.logprobs, 2);
  EXPECT_EQ(s.prompt_logprobs, 2);  // echo + logprobs scores the prompt too
  EXPECT_TRUE(p.echo);
  EXPECT_TRUE(p.stream);
  EXPECT_TRUE(p.include_usage);
  EXPECT_EQ(p.priority, -4);
  EXPECT_EQ(p.user, "u1");

  const GenerationRequest g = ToGenerationRequest(p, 0);
  EXPECT_EQ(g.prompt_ids, p.prompts[0]);
  EXPECT_EQ(g.priority, -4);
  EXPECT_EQ(g.params.max_tokens, 20);
}

TEST(CompletionRequest, MaxCompletionTokensWinsAndNullIsUnset) {
  EXPECT_EQ(RequestOf(Parse({{"prompt", "x"}, {"max_tokens", 5}, {"max_completion_tokens", 7}})).params.max_tokens,
            7);
  const ParsedRequest& p = RequestOf(Parse({{"prompt", "x"}, {"temperature", nullptr}, {"max_tokens", nullptr}}));
  EXPECT_FLOAT_EQ(p.params.temperature, 1.0f);
  EXPECT_EQ(p.params.max_tokens, 16);
}

// generation_config.json's defaults sit under the request's own fields, and
// only the fields it sets move off vLLM's defaults.
TEST(CompletionRequest, GenerationConfigDefaultsUnderRequestFields) {
  ServingContext ctx = StoriesContext();
  ctx.generation.temperature = 0.0f;
  ctx.generation.top_k = 7;
  const ParsedRequest d = RequestOf(ParseCompletionRequest({{"prompt", "x"}}, ctx));
  EXPECT_FLOAT_EQ(d.params.temperature, 0.0f);
  EXPECT_EQ(d.params.top_k, 7);
  EXPECT_FLOAT_EQ(d.params.top_p, 1.0f);
  EXPECT_FLOAT_EQ(d.params.repetition_penalty, 1.0f);
  const ParsedRequest o =
      RequestOf(ParseCompletionRequest({{"prompt", "x"}, {"temperature", 0.7}, {"top_k", nullptr}}, ctx));
  EXPECT_FLOAT_EQ(o.params.temperature, 0.7f);
  EXPECT_EQ(o.params.top_k, 7);  // null is unset, so the model's default stays
}

}  // namespace
}  // namespace kaon::api
