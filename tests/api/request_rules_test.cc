// The request rules (server/api/request_rules.h): every rule refuses with
// InvalidArgument and a message that starts with the field it is about, the
// limits come from RequestLimits, and edge values inside the ranges pass.
#include "server/api/request_rules.h"

#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace kaon::api {
namespace {

TEST(RequestRules, DefaultsAreValid) { EXPECT_TRUE(CheckSamplingParams(SamplingParams{}, 100, {}).ok()); }

TEST(RequestRules, SamplingErrorsStartWithTheField) {
  struct Case {
    std::string field;
    void (*mutate)(SamplingParams&);
  };
  const std::vector<Case> cases = {
      {"n", [](SamplingParams& p) { p.n = 0; }},
      {"n", [](SamplingParams& p) { p.n = SamplingParams::kMaxChoices + 1; }},
      {"best_of", [](SamplingParams& p) { p.n = 2, p.best_of = 1; }},
      {"temperature", [](SamplingParams& p) { p.temperature = -0.1f; }},
      {"temperature", [](SamplingParams& p) { p.temperature = NAN; }},
      {"top_k", [](SamplingParams& p) { p.top_k = -2; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 0.0f; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 1.01f; }},
      {"min_p", [](SamplingParams& p) { p.min_p = 1.5f; }},
      {"presence_penalty", [](SamplingParams& p) { p.presence_penalty = 2.5f; }},
      {"frequency_penalty", [](SamplingParams& p) { p.frequency_penalty = -2.5f; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = 0.0f; }},
      {"logit_bias", [](SamplingParams& p) { p.logit_bias = {{100, 1.0f}}; }},
      {"logit_bias", [](SamplingParams& p) { p.logit_bias = {{-1, 1.0f}}; }},
      {"logit_bias", [](SamplingParams& p) { p.logit_bias = {{5, INFINITY}}; }},
      {"logit_bias", [](SamplingParams& p) { p.logit_bias.assign(3, {1, 1.0f}); }},
      {"logprobs", [](SamplingParams& p) { p.logprobs = 21; }},
      {"logprobs", [](SamplingParams& p) { p.logprobs = -2; }},
      {"prompt_logprobs", [](SamplingParams& p) { p.prompt_logprobs = -2; }},
      {"max_tokens", [](SamplingParams& p) { p.max_tokens = 0; }},
      {"min_tokens", [](SamplingParams& p) { p.min_tokens = -1; }},
      {"min_tokens", [](SamplingParams& p) { p.min_tokens = 17; }},
      {"stop_token_ids", [](SamplingParams& p) { p.stop_token_ids = {100}; }},
      {"stop_token_ids", [](SamplingParams& p) { p.stop_token_ids.assign(3, 1); }},
      {"stop", [](SamplingParams& p) { p.stop = {"ok", ""}; }},
      {"stop", [](SamplingParams& p) { p.stop.assign(3, "x"); }},
      {"stop", [](SamplingParams& p) { p.stop = {std::string(9, 'x')}; }},
  };
  RequestLimits limits;
  limits.max_logit_bias = 2;
  limits.max_stop_token_ids = 2;
  limits.max_stop = 2;
  limits.max_stop_bytes = 8;
  for (const Case& c : cases) {
    SamplingParams p;
    c.mutate(p);
    const absl::Status s = CheckSamplingParams(p, 100, limits);
    ASSERT_FALSE(s.ok()) << c.field;
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ParamFromRuleMessage(s.message()), c.field) << s.message();
  }
  SamplingParams edge;
  edge.top_k = -1;
  edge.top_p = 1.0f;
  edge.min_p = 1.0f;
  edge.logprobs = 20;
  edge.min_tokens = 16;
  edge.logit_bias = {{99, -100.0f}, {0, 5.0f}};
  edge.stop = {"12345678", "x"};
  edge.stop_token_ids = {0, 99};
  EXPECT_TRUE(CheckSamplingParams(edge, 100, limits).ok()) << CheckSamplingParams(edge, 100, limits);
}

TEST(RequestRules, LogprobsCountIsNamedAsTheApiNamesIt) {
  SamplingParams p;
  p.logprobs = 25;
  const absl::Status s = CheckSamplingParams(p, 100, {}, "top_logprobs");
  EXPECT_EQ(s.message(), "top_logprobs must be in [0, 20], got 25");
}

TEST(RequestRules, PromptAndContext) {
  EXPECT_TRUE(CheckPromptIds({0, 99}, 100).ok());
  EXPECT_EQ(CheckPromptIds({}, 100).message(), "the prompt must contain at least one token");
  EXPECT_EQ(CheckPromptIds({5, 100}, 100).message(), "prompt token id 100 is outside the vocabulary (0..99)");
  EXPECT_EQ(CheckPromptIds({-1}, 100).code(), absl::StatusCode::kInvalidArgument);

  EXPECT_TRUE(CheckContextLength(10, 6, 16).ok());
  EXPECT_EQ(CheckContextLength(10, 7, 16).message(),
            "This model's maximum context length is 16 tokens. However, you requested 17 tokens (10 in the prompt, 7 "
            "for the completion). Please reduce the prompt or max_tokens.");
  EXPECT_FALSE(CheckContextLength(16, 0, 16).ok());  // a full prompt leaves nothing to generate
  // No overflow for a max_tokens near 2^63.
  EXPECT_NE(CheckContextLength(10, INT64_MAX - 3, 16).message().find("requested 9223372036854775807 tokens"),
            std::string::npos);
}

TEST(RequestRules, GenerationRequestChecksPromptThenContextThenSampling) {
  SamplingParams p;
  p.max_tokens = 8;
  const ModelBounds b{100, 16};
  EXPECT_TRUE(CheckGenerationRequest({1, 2}, p, b, {}).ok());
  EXPECT_NE(CheckGenerationRequest({}, p, b, {}).message().find("at least one token"), std::string::npos);
  p.top_p = 0;
  p.max_tokens = 15;
  EXPECT_NE(CheckGenerationRequest({1, 2}, p, b, {}).message().find("maximum context length"), std::string::npos);
  p.max_tokens = 8;
  EXPECT_EQ(ParamFromRuleMessage(CheckGenerationRequest({1, 2}, p, b, {}).message()), "top_p");
}

TEST(RequestRules, GenerationDefaultsNameTheFile) {
  GenerationDefaults g;
  g.temperature = 0.0f;
  g.top_k = 40;
  EXPECT_TRUE(CheckGenerationDefaults(g, 100, "/m").ok());
  g.min_p = 2.0f;
  EXPECT_EQ(CheckGenerationDefaults(g, 100, "/m").message(), "/m/generation_config.json: min_p must be in [0, 1], got 2");
}

}  // namespace
}  // namespace kaon::api
