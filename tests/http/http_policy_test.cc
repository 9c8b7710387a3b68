#include "server/http/http_policy.h"

#include "gtest/gtest.h"

namespace kaon::http {
namespace {

TEST(HttpPolicyTest, ConstantTimeEqualsIsPlainEquality) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  // A prefix of the key is not the key.
  EXPECT_FALSE(ConstantTimeEquals("sec", "secret"));
}

TEST(HttpPolicyTest, BearerTokens) {
  EXPECT_TRUE(BearerMatches("Bearer k-123", "k-123"));
  EXPECT_TRUE(BearerMatches("bearer k-123", "k-123"));  // the scheme is case-insensitive
  EXPECT_TRUE(BearerMatches("  Bearer   k-123 ", "k-123"));
  EXPECT_FALSE(BearerMatches("Bearer k-1234", "k-123"));
  EXPECT_FALSE(BearerMatches("Basic k-123", "k-123"));
  EXPECT_FALSE(BearerMatches("k-123", "k-123"));
  EXPECT_FALSE(BearerMatches("Bearer", "k-123"));
  EXPECT_FALSE(BearerMatches("", "k-123"));
}

TEST(HttpPolicyTest, WhichPathsNeedTheKey) {
  for (const char* p : {"/v1/models", "/v1/completions", "/v1/chat/completions", "/v1/models/x", "/tokenize",
                        "/detokenize"}) {
    EXPECT_TRUE(PathNeedsApiKey(p)) << p;
  }
  for (const char* p : {"/health", "/metrics", "/version", "/v1x", "/"}) EXPECT_FALSE(PathNeedsApiKey(p)) << p;
}

TEST(HttpPolicyTest, AllowedOriginsParseAsJsonOrCommaList) {
  auto json = ParseAllowedOrigins(R"(["https://a.example", "http://b.example:8080"])");
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json, (std::vector<std::string>{"https://a.example", "http://b.example:8080"}));
  auto list = ParseAllowedOrigins(" https://a.example , http://b.example ");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(*list, (std::vector<std::string>{"https://a.example", "http://b.example"}));
  auto star = ParseAllowedOrigins("*");
  ASSERT_TRUE(star.ok());
  EXPECT_EQ(*star, std::vector<std::string>{"*"});

  for (const char* bad : {"[1, 2]", "[\"https://a\"", "example.com", "[\"\"]"}) {
    auto r = ParseAllowedOrigins(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("--allowed-origins"), std::string::npos);
    }
  }
}

TEST(HttpPolicyTest, AllowOriginEchoesAllowedOriginsOnly) {
  const std::vector<std::string> allowed = {"https://a.example"};
  EXPECT_EQ(AllowOrigin(allowed, "https://a.example"), "https://a.example");
  EXPECT_EQ(AllowOrigin(allowed, "https://A.example"), "https://A.example");
  EXPECT_EQ(AllowOrigin(allowed, "https://evil.example"), std::nullopt);
  EXPECT_EQ(AllowOrigin(allowed, ""), std::nullopt);
  EXPECT_EQ(AllowOrigin({"*"}, "https://any.example"), "*");
}

TEST(HttpPolicyTest, RequestLogLine) {
  RequestLogEntry e;
  e.request_id = "req-1";
  e.method = "POST";
  e.path = "/v1/completions";
  e.status = 200;
  e.prompt_tokens = 5;
  e.output_tokens = 16;
  e.ttft_seconds = 0.0031;
  e.total_seconds = 0.0204;
  EXPECT_EQ(FormatRequestLog(e),
            "kaon: request req-1 POST /v1/completions 200 prompt_tokens=5 output_tokens=16 ttft_ms=3.1 total_ms=20.4");
  RequestLogEntry g;
  g.request_id = "r";
  g.method = "GET";
  g.path = "/v1/models";
  g.status = 401;
  g.total_seconds = 0.0001;
  g.note = "x";
  EXPECT_EQ(FormatRequestLog(g), "kaon: request r GET /v1/models 401 total_ms=0.1 (x)");
}

}  // namespace
}  // namespace kaon::http
