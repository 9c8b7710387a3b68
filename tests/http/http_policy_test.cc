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

// X-Request-Id is repeated in a response header and the log: only 1..128
// printable ASCII bytes are, anything else gets a generated id.
TEST(HttpPolicyTest, ClientRequestIdsMustBeSafeToRepeat) {
  EXPECT_EQ(ClientRequestId("abc-123 x"), "abc-123 x");
  EXPECT_EQ(ClientRequestId(std::string(128, 'a')), std::string(128, 'a'));
  EXPECT_EQ(ClientRequestId(std::string(129, 'a')), std::nullopt);
  EXPECT_EQ(ClientRequestId(""), std::nullopt);
  EXPECT_EQ(ClientRequestId("a\nkaon: request forged"), std::nullopt);
  EXPECT_EQ(ClientRequestId("a\rb"), std::nullopt);
  EXPECT_EQ(ClientRequestId("caf\xc3\xa9"), std::nullopt);
  EXPECT_EQ(ClientRequestId("a\x7f"), std::nullopt);
}

// Nothing a client sends can end the log line or add a field to it.
TEST(HttpPolicyTest, ClientTextInTheLogLineIsEscaped) {
  RequestLogEntry e;
  e.request_id = "r";
  e.method = "GET";
  e.path = "/a b\nkaon: request forged GET / 200\\";
  e.status = 404;
  e.note = "bad\r\nline";
  const std::string line = FormatRequestLog(e);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_EQ(line.find('\r'), std::string::npos) << line;
  EXPECT_EQ(line,
            "kaon: request r GET /a\\x20b\\x0akaon:\\x20request\\x20forged\\x20GET\\x20/\\x20200\\x5c 404 "
            "total_ms=0.0 (bad\\x0d\\x0aline)");
  EXPECT_EQ(EscapeForLog("plain/path-1.2_3"), "plain/path-1.2_3");
}

}  // namespace
}  // namespace kaon::http
