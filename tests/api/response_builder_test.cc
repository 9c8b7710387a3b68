// Response and SSE chunk shapes from hand-written engine event sequences,
// checked field by field.
#include "server/api/response_builder.h"

#include "server/api/chat_request.h"
#include "server/api/completion_request.h"
#include "tests/api/api_test_util.h"

namespace kaon::api {
namespace {

using nlohmann::ordered_json;
using testing::RequestOf;
using testing::StoriesContext;
using testing::StoriesTokenizer;

ParsedRequest Completion(const ordered_json& body) {
  return RequestOf(ParseCompletionRequest(body, StoriesContext()));
}

RequestOutput Event(int32_t index, std::vector<int32_t> ids, std::string text) {
  RequestOutput e;
  e.index = index;
  e.token_ids = std::move(ids);
  e.text = std::move(text);
  return e;
}

RequestOutput Last(RequestOutput e, FinishReason reason, int64_t prompt_tokens, int64_t completion_tokens,
                   int64_t cached = 0) {
  e.finish_reason = reason;
  e.usage = Usage{prompt_tokens, completion_tokens, cached};
  return e;
}

SampleResult Sample(int32_t token, float logprob, std::vector<TokenLogprob> top = {}) {
  return SampleResult{token, logprob, std::move(top)};
}

// The JSON payloads of SSE events ("data: {...}\n\n").
std::vector<ordered_json> Payloads(const std::vector<std::string>& events) {
  std::vector<ordered_json> out;
  for (const std::string& e : events) {
    EXPECT_EQ(e.rfind("data: ", 0), 0u) << e;
    EXPECT_EQ(e.substr(e.size() - 2), "\n\n") << e;
    out.push_back(ordered_json::parse(e.substr(6, e.size() - 8)));
  }
  return out;
}

std::vector<std::string> Keys(const ordered_json& j) {
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  return keys;
}

std::string Tok(int32_t id) { return TokenText(StoriesTokenizer(), id); }

TEST(ResponseBuilder, CompletionLengthFinish) {
  const ParsedRequest req = Completion({{"prompt", "Once upon a time"}, {"max_tokens", 3}});
  ResponseBuilder b(req, StoriesTokenizer(), ResponseMeta::Make(RequestKind::kCompletion, "stories260k"));
  EXPECT_TRUE(b.Add(0, Event(0, {432}, ",")).empty());  // not streaming: no chunks
  b.Add(0, Last(Event(0, {383, 286}, " there was"), FinishReason::kLength, 5, 3, 2));
  EXPECT_TRUE(b.finished());
  const ordered_json r = b.Response();
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"id", "object", "created", "model", "choices", "usage",
                                               "system_fingerprint"}));
  EXPECT_EQ(r["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_EQ(r["id"].get<std::string>().size(), 5u + 32u);
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_GT(r["created"].get<int64_t>(), 1700000000);
  EXPECT_EQ(r["model"], "stories260k");
  EXPECT_TRUE(r["system_fingerprint"].is_null());
  ASSERT_EQ(r["choices"].size(), 1u);
  const ordered_json& c = r["choices"][0];
  EXPECT_EQ(Keys(c), (std::vector<std::string>{"index", "text", "logprobs", "finish_reason", "stop_reason"}));
  EXPECT_EQ(c["index"], 0);
  EXPECT_EQ(c["text"], ", there was");
  EXPECT_TRUE(c["logprobs"].is_null());
  EXPECT_EQ(c["finish_reason"], "length");
  EXPECT_TRUE(c["stop_reason"].is_null());
  EXPECT_EQ(r["usage"].dump(),
            R"({"prompt_tokens":5,"completion_tokens":3,"total_tokens":8,"prompt_tokens_details":{"cached_tokens":2}})");
}

TEST(ResponseBuilder, StopStringAndStopTokenReasons) {
  const ParsedRequest req = Completion({{"prompt", "Once upon a time"}, {"n", 2}, {"stop", "Lily"}});
  ResponseBuilder b(req, StoriesTokenizer(), ResponseMeta::Make(RequestKind::kCompletion, "m"));
  RequestOutput by_string = Last(Event(0, {432}, ", there"), FinishReason::kStop, 5, 1);
  by_string.stop_reason = std::string("Lily");
  RequestOutput by_token = Last(Event(1, {2}, ""), FinishReason::kStop, 5, 1);
  by_token.stop_reason = int32_t{2};
  b.Add(0, by_token);
  b.Add(0, by_string);
  const ordered_json r = b.Response();
  ASSERT_EQ(r["choices"].size(), 2u);
  EXPECT_EQ(r["choices"][0]["index"], 0);
  EXPECT_EQ(r["choices"][0]["text"], ", there");
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r["choices"][0]["stop_reason"], "Lily");
  EXPECT_EQ(r["choices"][1]["index"], 1);
  EXPECT_EQ(r["choices"][1]["text"], "");
  EXPECT_EQ(r["choices"][1]["stop_reason"], 2);
  // The prompt counts once, however many choices share it.
  EXPECT_EQ(r["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(r["usage"]["completion_tokens"], 2);
}

TEST(ResponseBuilder, StreamingCompletionWithTwoChoicesAndUsage) {
  const ParsedRequest req = Completion({{"prompt", "Once upon a time"},
                                        {"n", 2},
                                        {"stream", true},
                                        {"stream_options", {{"include_usage", true}}}});
  ResponseBuilder b(req, StoriesTokenizer(), ResponseMeta::Make(RequestKind::kCompletion, "stories260k"));
  std::vector<std::string> sse;
  auto add = [&](const RequestOutput& e) {
    for (std::string& s : b.Add(0, e)) sse.push_back(std::move(s));
  };
  add(Event(0, {432}, ","));
  add(Event(1, {383}, " there"));
  add(Event(0, {300}, ""));  // held back (e.g. half a character): no chunk
  add(Last(Event(0, {301}, " a"), FinishReason::kLength, 5, 3));
  add(Last(Event(1, {}, ""), FinishReason::kStop, 5, 1));
  const std::vector<std::string> tail = b.FinishStream();
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail.back(), "data: [DONE]\n\n");
  sse.insert(sse.end(), tail.begin(), tail.end() - 1);

  const std::vector<ordered_json> chunks = Payloads(sse);
  ASSERT_EQ(chunks.size(), 5u);
  const std::string id = chunks[0]["id"];
  for (const ordered_json& c : chunks) {
    EXPECT_EQ(c["id"], id);
    EXPECT_EQ(c["object"], "text_completion");
    EXPECT_EQ(c["model"], "stories260k");
    EXPECT_TRUE(c.contains("usage"));
  }
  auto choice = [&](size_t i) { return chunks[i]["choices"].at(0); };
  EXPECT_EQ(Keys(choice(0)), (std::vector<std::string>{"index", "text", "logprobs", "finish_reason", "stop_reason"}));
  EXPECT_EQ(choice(0)["index"], 0);
  EXPECT_EQ(choice(0)["text"], ",");
  EXPECT_TRUE(choice(0)["finish_reason"].is_null());
  EXPECT_TRUE(chunks[0]["usage"].is_null());
  EXPECT_EQ(choice(1)["index"], 1);
  EXPECT_EQ(choice(1)["text"], " there");
  EXPECT_EQ(choice(2)["index"], 0);
  EXPECT_EQ(choice(2)["text"], " a");
  EXPECT_EQ(choice(2)["finish_reason"], "length");
  EXPECT_EQ(choice(3)["index"], 1);
  EXPECT_EQ(choice(3)["text"], "");
  EXPECT_EQ(choice(3)["finish_reason"], "stop");
  EXPECT_TRUE(chunks[4]["choices"].is_array());
  EXPECT_TRUE(chunks[4]["choices"].empty());
  EXPECT_EQ(chunks[4]["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(chunks[4]["usage"]["completion_tokens"], 4);
  EXPECT_EQ(chunks[4]["usage"]["total_tokens"], 9);
}

TEST(ResponseBuilder, StreamWithoutUsageEndsWithDoneOnly) {
  const ParsedRequest req = Completion({{"prompt", "x"}, {"stream", true}});
  ResponseBuilder b(req, StoriesTokenizer(), ResponseMeta::Make(RequestKind::kCompletion, "m"));
  const std::vector<ordered_json> chunks = Payloads(b.Add(0, Last(Event(0, {5}, "a"), FinishReason::kLength, 1, 1)));
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_FALSE(chunks[0].contains("usage"));
  EXPECT_EQ(b.FinishStream(), std::vector<std::string>{"data: [DONE]\n\n"});
}

TEST(ResponseBuilder, CompletionLogprobsWithEcho) {
  const ParsedRequest req = Completion({{"prompt", "Once upon a time"}, {"logprobs", 1}, {"echo", true}});
  ASSERT_EQ(req.prompts[0].size(), 5u);
  ResponseBuilder b(req, StoriesTokenizer(), ResponseMeta::Make(RequestKind::kCompletion, "m"));
  RequestOutput first = Event(0, {432}, ",");
  for (size_t i = 1; i < 5; ++i) {
    const int32_t id = req.prompts[0][i];
    first.prompt_logprobs.push_back(Sample(id, -1.0f * static_cast<float>(i), {{id, -1.0f * static_cast<float>(i)}}));
  }
  first.logprobs.push_back(Sample(432, -0.25f, {{383, -0.1f}}));
  b.Add(0, first);
  RequestOutput second = Last(Event(0, {383}, " there"), FinishReason::kLength, 5, 2);
  second.logprobs.push_back(Sample(383, -0.5f, {{383, -0.5f}}));
  b.Add(0, second);

  const ordered_json c = b.Response()["choices"][0];
  EXPECT_EQ(c["text"], "Once upon a time, there");
  const ordered_json& lp = c["logprobs"];
  EXPECT_EQ(Keys(lp), (std::vector<std::string>{"tokens", "token_logprobs", "top_logprobs", "text_offset"}));
  ASSERT_EQ(lp["tokens"].size(), 7u);
  EXPECT_EQ(lp["tokens"][0], Tok(1));
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  EXPECT_EQ(lp["tokens"][1], Tok(403));
  EXPECT_DOUBLE_EQ(lp["token_logprobs"][1].get<double>(), -1.0);
  EXPECT_EQ(lp["tokens"][5], Tok(432));
  EXPECT_DOUBLE_EQ(lp["token_logprobs"][5].get<double>(), -0.25);
  // The top alternative and the sampled token.
  ASSERT_EQ(lp["top_logprobs"][5].size(), 2u);
  EXPECT_NEAR(lp["top_logprobs"][5][Tok(383)].get<double>(), -0.1, 1e-6);
  EXPECT_DOUBLE_EQ(lp["top_logprobs"][5][Tok(432)].get<double>(), -0.25);
  ASSERT_EQ(lp["top_logprobs"][6].size(), 1u);
  // text_offset: code points before each token.
  int64_t offset = 0;
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(lp["text_offset"][i], offset) << i;
    offset += CodePointCount(lp["tokens"][i].get<std::string>());
  }
}

TEST(ResponseBuilder, StreamedLogprobsRideWithText) {
  const ParsedRequest req = Completion({{"prompt", "x"}, {"logprobs", 0}, {"stream", true}});
  ResponseBuilder b(req, StoriesTokenizer(), ResponseMeta::Make(RequestKind::kCompletion, "m"));
  RequestOutput held = Event(0, {432}, "");
  held.logprobs.push_back(Sample(432, -1.0f));
  EXPECT_TRUE(b.Add(0, held).empty());
  RequestOutput next = Event(0, {383}, "ab");
  next.logprobs.push_back(Sample(383, -2.0f));
  std::vector<ordered_json> c1 = Payloads(b.Add(0, next));
  ASSERT_EQ(c1.size(), 1u);
  const ordered_json& lp = c1[0]["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], ordered_json({Tok(432), Tok(383)}));
  EXPECT_EQ(lp["text_offset"], ordered_json({0, CodePointCount(Tok(432))}));
  RequestOutput last = Last(Event(0, {286}, "c"), FinishReason::kLength, 2, 3);
  last.logprobs.push_back(Sample(286, -3.0f));
  std::vector<ordered_json> c2 = Payloads(b.Add(0, last));
  ASSERT_EQ(c2.size(), 1u);
  const ordered_json& lp2 = c2[0]["choices"][0]["logprobs"];
  EXPECT_EQ(lp2["tokens"], ordered_json({Tok(286)}));
  EXPECT_EQ(lp2["text_offset"][0], CodePointCount(Tok(432)) + CodePointCount(Tok(383)));
  EXPECT_EQ(c2[0]["choices"][0]["finish_reason"], "length");
}

TEST(ResponseBuilder, ChatResponseAndChunks) {
  ParsedRequest req;
  req.kind = RequestKind::kChat;
  req.prompts = {{1, 2, 3}};
  req.prompt_texts = {"<rendered>"};
  req.params.logprobs = 1;
  ResponseBuilder whole(req, StoriesTokenizer(), ResponseMeta::Make(RequestKind::kChat, "m"));
  RequestOutput e1 = Event(0, {432}, "Hello");
  e1.logprobs.push_back(Sample(432, -0.5f, {{432, -0.5f}}));
  RequestOutput e2 = Last(Event(0, {383}, " you"), FinishReason::kStop, 3, 2);
  e2.logprobs.push_back(Sample(383, -1.5f, {{432, -0.25f}}));
  e2.stop_reason = int32_t{2};
  whole.Add(0, e1);
  whole.Add(0, e2);
  const ordered_json r = whole.Response();
  EXPECT_EQ(r["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(r["object"], "chat.completion");
  const ordered_json& c = r["choices"][0];
  EXPECT_EQ(Keys(c), (std::vector<std::string>{"index", "message", "logprobs", "finish_reason", "stop_reason"}));
  EXPECT_EQ(c["message"].dump(), R"({"role":"assistant","content":"Hello you"})");
  EXPECT_EQ(c["finish_reason"], "stop");
  EXPECT_EQ(c["stop_reason"], 2);
  ASSERT_EQ(c["logprobs"]["content"].size(), 2u);
  const ordered_json& entry = c["logprobs"]["content"][1];
  EXPECT_EQ(Keys(entry), (std::vector<std::string>{"token", "logprob", "bytes", "top_logprobs"}));
  EXPECT_EQ(entry["token"], Tok(383));
  EXPECT_DOUBLE_EQ(entry["logprob"].get<double>(), -1.5);
  ordered_json bytes = ordered_json::array();
  for (unsigned char ch : Tok(383)) bytes.push_back(static_cast<int>(ch));
  EXPECT_EQ(entry["bytes"], bytes);
  ASSERT_EQ(entry["top_logprobs"].size(), 1u);
  EXPECT_EQ(entry["top_logprobs"][0]["token"], Tok(432));
  EXPECT_DOUBLE_EQ(entry["top_logprobs"][0]["logprob"].get<double>(), -0.25);
  EXPECT_EQ(r["usage"]["completion_tokens"], 2);

  req.stream = true;
  req.params.logprobs = -1;
  ResponseBuilder streamed(req, StoriesTokenizer(), ResponseMeta::Make(RequestKind::kChat, "m"));
  std::vector<std::string> sse = streamed.Add(0, Event(0, {432}, "Hello"));
  for (std::string& s : streamed.Add(0, Last(Event(0, {383}, " you"), FinishReason::kLength, 3, 2))) {
    sse.push_back(std::move(s));
  }
  const std::vector<ordered_json> chunks = Payloads(sse);
  ASSERT_EQ(chunks.size(), 3u);
  for (const ordered_json& ch : chunks) EXPECT_EQ(ch["object"], "chat.completion.chunk");
  EXPECT_EQ(chunks[0]["choices"][0]["delta"].dump(), R"({"role":"assistant"})");
  EXPECT_EQ(chunks[1]["choices"][0]["delta"].dump(), R"({"content":"Hello"})");
  EXPECT_TRUE(chunks[1]["choices"][0]["logprobs"].is_null());
  EXPECT_TRUE(chunks[1]["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(chunks[2]["choices"][0]["delta"].dump(), R"({"content":" you"})");
  EXPECT_EQ(chunks[2]["choices"][0]["finish_reason"], "length");
}

TEST(ResponseBuilder, SeveralPromptsNumberChoicesPromptMajor) {
  const ParsedRequest req = Completion({{"prompt", {"a", "b"}}, {"n", 2}});
  ResponseBuilder b(req, StoriesTokenizer(), ResponseMeta::Make(RequestKind::kCompletion, "m"));
  b.Add(1, Last(Event(1, {5}, "B1"), FinishReason::kLength, 2, 1));
  b.Add(0, Last(Event(0, {5}, "A0"), FinishReason::kLength, 2, 1));
  b.Add(1, Last(Event(0, {5}, "B0"), FinishReason::kLength, 2, 1));
  EXPECT_FALSE(b.finished());
  b.Add(0, Last(Event(1, {5}, "A1"), FinishReason::kLength, 2, 1));
  EXPECT_TRUE(b.finished());
  const ordered_json r = b.Response();
  ASSERT_EQ(r["choices"].size(), 4u);
  EXPECT_EQ(r["choices"][0]["text"], "A0");
  EXPECT_EQ(r["choices"][1]["text"], "A1");
  EXPECT_EQ(r["choices"][2]["text"], "B0");
  EXPECT_EQ(r["choices"][3]["text"], "B1");
  EXPECT_EQ(r["usage"]["prompt_tokens"],
            static_cast<int64_t>(req.prompts[0].size() + req.prompts[1].size()));
  EXPECT_EQ(r["usage"]["completion_tokens"], 4);
}

TEST(ResponseBuilder, FailedStepIsAServerError) {
  const ParsedRequest req = Completion({{"prompt", "x"}, {"stream", true}});
  ResponseBuilder b(req, StoriesTokenizer(), ResponseMeta::Make(RequestKind::kCompletion, "m"));
  RequestOutput failed;
  failed.error = "step failed: out of memory";
  const std::vector<ordered_json> chunks = Payloads(b.Add(0, failed));
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0]["error"]["message"], "step failed: out of memory");
  EXPECT_EQ(chunks[0]["error"]["type"], "server_error");
  ASSERT_TRUE(b.error().has_value());
  EXPECT_EQ(b.error()->http_status, 500);
  EXPECT_TRUE(b.finished());
}

}  // namespace
}  // namespace kaon::api
