// End-to-end tests of the gRPC API against the real `kaon serve
// models/stories260k --port 0 --grpc-port 0`, through the generated C++
// stubs: golden outputs for all three input kinds, streamed and unary;
// equivalence with the HTTP API; cancellation and deadlines freeing the
// engine's resources (/metrics); error codes; API keys; health; draining.
#include <grpcpp/generic/generic_stub.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

#include "tests/grpc/grpc_test_util.h"

namespace kaon::testing {
namespace {

using kaon::v1::GenerateRequest;
using kaon::v1::GenerateResponse;
using Json = nlohmann::json;

GenerateRequest Greedy(const std::string& text, int64_t max_tokens) {
  GenerateRequest r;
  r.set_text(text);
  r.set_temperature(0);
  r.set_max_tokens(max_tokens);
  r.set_ignore_eos(true);
  return r;
}

class GrpcTest : public GrpcServerSuite {
 protected:
  // POST to the HTTP API; the parsed JSON body (null on transport failure).
  Json HttpPost(const std::string& path, const Json& body) {
    Connection c(server_->http_port());
    std::optional<HttpResponse> r = c.Request("POST", path, body.dump());
    if (!r) return nullptr;
    EXPECT_EQ(r->status, 200) << r->body;
    return r->JsonBody();
  }

  // Polls /metrics until nothing runs or waits and KV usage is back at `kv`.
  // The KV usage once nothing runs or waits (earlier requests may still be
  // releasing their blocks when the previous test returns).
  double IdleKvUsage() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Metric(server_->http_port(), "kaon:num_requests_running") == 0 &&
          Metric(server_->http_port(), "kaon:num_requests_waiting") == 0) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Metric(server_->http_port(), "kaon:kv_cache_usage_perc");
  }

  void ExpectSettled(double kv) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    double running = -1, waiting = -1, usage = -1;
    while (std::chrono::steady_clock::now() < deadline) {
      running = Metric(server_->http_port(), "kaon:num_requests_running");
      waiting = Metric(server_->http_port(), "kaon:num_requests_waiting");
      usage = Metric(server_->http_port(), "kaon:kv_cache_usage_perc");
      if (running == 0 && waiting == 0 && std::abs(usage - kv) < 1e-9) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "after 10 s: num_requests_running " << running << ", num_requests_waiting " << waiting
                  << ", kv_cache_usage_perc " << usage << " (baseline " << kv << ")";
  }

};

TEST_F(GrpcTest, AnnouncesGrpcBeforeHttp) { EXPECT_TRUE(server_->grpc_line_first()); }

TEST_F(GrpcTest, GoldenCasesStreamedAndUnary) {
  const Json golden = Golden();
  ASSERT_GE(golden["cases"].size(), 6u);
  int streamed = 0;
  for (const Json& c : golden["cases"]) {
    SCOPED_TRACE(c["prompt"].dump());
    const std::vector<int32_t> want = c["greedy_token_ids"].get<std::vector<int32_t>>();
    const GenerateRequest req = Greedy(c["prompt"].get<std::string>(), c["max_tokens"].get<int64_t>());

    StreamResult s = Stream(*stub_, req);
    ASSERT_TRUE(s.status.ok()) << s.status.error_message();
    EXPECT_EQ(s.token_ids, want);
    EXPECT_EQ(s.text, c["greedy_text"].get<std::string>());
    EXPECT_EQ(s.prompt_token_ids, c["prompt_token_ids"].get<std::vector<int32_t>>());
    EXPECT_EQ(s.finish_reason, kaon::v1::FINISH_REASON_LENGTH);
    EXPECT_EQ(s.usage.completion_tokens(), static_cast<int64_t>(want.size()));
    EXPECT_EQ(s.usage.prompt_tokens(), static_cast<int64_t>(c["prompt_token_ids"].size()));
    // Events merge while the consumer lags (a loaded machine), so one
    // stream may come in few messages; across the cases some must stream.
    if (s.messages > 2) ++streamed;

    grpc::ClientContext ctx;
    SetDeadline(ctx);
    GenerateResponse r;
    grpc::Status st = stub_->Complete(&ctx, req, &r);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(r.choices_size(), 1);
    EXPECT_EQ(std::vector<int32_t>(r.choices(0).token_ids().begin(), r.choices(0).token_ids().end()), want);
    EXPECT_EQ(r.choices(0).text(), c["greedy_text"].get<std::string>());
    EXPECT_EQ(r.usage().total_tokens(), r.usage().prompt_tokens() + r.usage().completion_tokens());
  }
  EXPECT_GE(streamed, 1) << "no golden case streamed in more than two messages";
}

TEST_F(GrpcTest, TokenIdInputMatchesGolden) {
  const Json c = Golden()["cases"][1];
  GenerateRequest req = Greedy("", c["max_tokens"].get<int64_t>());
  for (int32_t id : c["prompt_token_ids"].get<std::vector<int32_t>>()) req.mutable_token_ids()->add_ids(id);
  ASSERT_EQ(req.input_case(), GenerateRequest::kTokenIds);
  StreamResult s = Stream(*stub_, req);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(s.token_ids, c["greedy_token_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(s.text, c["greedy_text"].get<std::string>());
}

// The same greedy request through /v1/completions and Generate: the same
// text, and the same tokens (their count and per-token logprobs).
TEST_F(GrpcTest, TextMatchesHttpCompletions) {
  for (const char* prompt : {"Once upon a time", "The little dog", "Lily wanted to"}) {
    SCOPED_TRACE(prompt);
    Json http = HttpPost("/v1/completions", {{"model", "stories260k"},
                                             {"prompt", prompt},
                                             {"temperature", 0},
                                             {"max_tokens", 60},
                                             {"ignore_eos", true},
                                             {"logprobs", 2}});
    ASSERT_TRUE(http.is_object());
    const Json& choice = http["choices"][0];
    GenerateRequest req = Greedy(prompt, 60);
    req.set_logprobs(2);
    StreamResult s = Stream(*stub_, req);
    ASSERT_TRUE(s.status.ok()) << s.status.error_message();
    EXPECT_EQ(s.text, choice["text"].get<std::string>());
    const Json& lp = choice["logprobs"];
    ASSERT_EQ(lp["token_logprobs"].size(), s.token_ids.size());
    ASSERT_EQ(s.logprobs.size(), s.token_ids.size());
    for (size_t i = 0; i < s.token_ids.size(); ++i) {
      EXPECT_EQ(s.logprobs[i].token_id(), s.token_ids[i]);
      EXPECT_NEAR(s.logprobs[i].logprob(), lp["token_logprobs"][i].get<double>(), 1e-6) << "token " << i;
      ASSERT_EQ(s.logprobs[i].top_size(), 2);
      // Greedy: the sampled token is the top alternative.
      EXPECT_EQ(s.logprobs[i].top(0).token_id(), s.token_ids[i]);
    }
    EXPECT_EQ(s.usage.completion_tokens(), http["usage"]["completion_tokens"].get<int64_t>());
    EXPECT_EQ(s.usage.prompt_tokens(), http["usage"]["prompt_tokens"].get<int64_t>());
  }
}

TEST_F(GrpcTest, ChatMatchesHttpChatCompletions) {
  Json http = HttpPost("/v1/chat/completions",
                       {{"model", "stories260k"},
                        {"messages", {{{"role", "system"}, {"content", "Tell a story."}},
                                      {{"role", "user"}, {"content", "Once upon a time"}}}},
                        {"temperature", 0},
                        {"max_tokens", 40},
                        {"ignore_eos", true}});
  ASSERT_TRUE(http.is_object());
  GenerateRequest req;
  kaon::v1::ChatMessage* sys = req.mutable_chat()->add_messages();
  sys->set_role("system");
  sys->set_content("Tell a story.");
  kaon::v1::ChatMessage* user = req.mutable_chat()->add_messages();
  user->set_role("user");
  user->set_content("Once upon a time");
  req.set_temperature(0);
  req.set_max_tokens(40);
  req.set_ignore_eos(true);

  StreamResult s = Stream(*stub_, req);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(s.text, http["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_EQ(s.token_ids.size(), 40u);
  EXPECT_EQ(s.usage.prompt_tokens(), http["usage"]["prompt_tokens"].get<int64_t>());

  // The prompt is the template's rendering, tokenized without special tokens.
  kaon::v1::TokenizeRequest treq;
  *treq.mutable_chat() = req.chat();
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  kaon::v1::TokenizeResponse tok;
  ASSERT_TRUE(stub_->Tokenize(&ctx, treq, &tok).ok());
  EXPECT_EQ(std::vector<int32_t>(tok.tokens().begin(), tok.tokens().end()), s.prompt_token_ids);
}

TEST_F(GrpcTest, UnaryChoicesWithN) {
  GenerateRequest req = Greedy("Once upon a time", 20);
  req.set_n(3);
  req.set_temperature(1.0);
  req.set_seed(7);
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  GenerateResponse r;
  ASSERT_TRUE(stub_->Complete(&ctx, req, &r).ok());
  ASSERT_EQ(r.choices_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r.choices(i).index(), i);
    EXPECT_EQ(r.choices(i).token_ids_size(), 20);
    EXPECT_EQ(r.choices(i).finish_reason(), kaon::v1::FINISH_REASON_LENGTH);
  }
  EXPECT_EQ(r.usage().completion_tokens(), 60);
}

TEST_F(GrpcTest, StopStringEndsWithStopReason) {
  const Json c = Golden()["cases"][0];
  const std::string text = c["greedy_text"].get<std::string>();
  // A word from the middle of the golden continuation.
  const std::string stop = text.substr(text.size() / 2, 4);
  GenerateRequest req = Greedy(c["prompt"].get<std::string>(), 128);
  req.set_ignore_eos(false);
  req.add_stop(stop);
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  GenerateResponse r;
  ASSERT_TRUE(stub_->Complete(&ctx, req, &r).ok());
  ASSERT_EQ(r.choices_size(), 1);
  EXPECT_EQ(r.choices(0).finish_reason(), kaon::v1::FINISH_REASON_STOP);
  EXPECT_EQ(r.choices(0).stop_string(), stop);
  EXPECT_EQ(r.choices(0).text(), text.substr(0, text.find(stop)));
}

TEST_F(GrpcTest, CancelMidStreamFreesTheRequest) {
  const double kv = IdleKvUsage();
  const double generated_before = Metric(server_->http_port(), "kaon:generation_tokens_total");
  constexpr int kStreams = 4;
  constexpr int64_t kMaxTokens = 450;
  std::vector<StreamResult> results(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      results[i] = Stream(*stub_, Greedy("Once upon a time", kMaxTokens), std::chrono::seconds(60), /*cancel_after=*/2);
    });
  }
  for (std::thread& t : threads) t.join();
  int cancelled = 0;
  for (const StreamResult& r : results) {
    EXPECT_GE(r.messages, 2);
    if (r.status.error_code() == grpc::StatusCode::CANCELLED) ++cancelled;
  }
  EXPECT_GE(cancelled, 1) << "every stream finished before its cancel";
  ExpectSettled(kv);
  const double generated = Metric(server_->http_port(), "kaon:generation_tokens_total") - generated_before;
  EXPECT_LT(generated, kStreams * kMaxTokens / 2) << "cancelled requests kept generating";
}

TEST_F(GrpcTest, ExpiredDeadlineAbortsTheRequest) {
  const double kv = IdleKvUsage();
  const double generated_before = Metric(server_->http_port(), "kaon:generation_tokens_total");
  constexpr int kCalls = 8;
  constexpr int64_t kMaxTokens = 450;
  std::vector<grpc::Status> statuses(kCalls);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      if (i % 2 == 0) {
        statuses[i] = Stream(*stub_, Greedy("Once upon a time", kMaxTokens), std::chrono::milliseconds(30)).status;
      } else {
        grpc::ClientContext ctx;
        SetDeadline(ctx, std::chrono::milliseconds(30));
        GenerateResponse r;
        statuses[i] = stub_->Complete(&ctx, Greedy("Once upon a time", kMaxTokens), &r);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  int expired = 0;
  for (const grpc::Status& s : statuses) {
    if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) ++expired;
  }
  EXPECT_GE(expired, 1) << "no call ran past its 30 ms deadline";
  ExpectSettled(kv);
  const double generated = Metric(server_->http_port(), "kaon:generation_tokens_total") - generated_before;
  EXPECT_LT(generated, kCalls * kMaxTokens / 2) << "expired requests kept generating";
}

grpc::Status CompleteStatus(kaon::v1::Generation::Stub& stub, const GenerateRequest& req) {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  GenerateResponse r;
  return stub.Complete(&ctx, req, &r);
}

TEST_F(GrpcTest, ErrorsMapToStatusCodesNamingTheField) {
  GenerateRequest bad_temperature = Greedy("Hi", 8);
  bad_temperature.set_temperature(-1);
  grpc::Status s = CompleteStatus(*stub_, bad_temperature);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("temperature"), std::string::npos) << s.error_message();
  // The streaming call refuses the same way.
  StreamResult st = Stream(*stub_, bad_temperature);
  EXPECT_EQ(st.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.messages, 0);

  GenerateRequest bad_top_p = Greedy("Hi", 8);
  bad_top_p.set_top_p(0);
  s = CompleteStatus(*stub_, bad_top_p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("top_p"), std::string::npos) << s.error_message();

  GenerateRequest unknown_model = Greedy("Hi", 8);
  unknown_model.set_model("gpt-17");
  s = CompleteStatus(*stub_, unknown_model);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("gpt-17"), std::string::npos) << s.error_message();

  GenerateRequest too_long = Greedy("", 16);
  for (int i = 0; i < 600; ++i) too_long.mutable_token_ids()->add_ids(300);
  s = CompleteStatus(*stub_, too_long);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("maximum context length is 512"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("token_ids"), std::string::npos) << s.error_message();

  GenerateRequest bad_id = Greedy("", 16);
  bad_id.mutable_token_ids()->add_ids(100000);
  s = CompleteStatus(*stub_, bad_id);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("vocabulary"), std::string::npos) << s.error_message();

  GenerateRequest no_input;
  s = CompleteStatus(*stub_, no_input);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("text, chat or token_ids"), std::string::npos) << s.error_message();

  GenerateRequest bad_logprobs = Greedy("Hi", 8);
  bad_logprobs.set_logprobs(50);
  s = CompleteStatus(*stub_, bad_logprobs);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("logprobs"), std::string::npos) << s.error_message();

  GenerateRequest bad_tools;
  bad_tools.mutable_chat()->add_messages()->set_role("user");
  bad_tools.mutable_chat()->add_tools("not json");
  s = CompleteStatus(*stub_, bad_tools);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("tools"), std::string::npos) << s.error_message();
}

TEST_F(GrpcTest, OversizedMessageIsRefused) {
  GenerateRequest huge = Greedy(std::string(17 << 20, 'a'), 8);  // over the 16 MiB default
  grpc::Status s = CompleteStatus(*stub_, huge);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
}

TEST_F(GrpcTest, ModelInfoTokenizeDetokenizeListModels) {
  grpc::ClientContext c1;
  SetDeadline(c1);
  kaon::v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModelInfo(&c1, {}, &info).ok());
  EXPECT_EQ(info.id(), "stories260k");
  EXPECT_EQ(info.architecture(), "LlamaForCausalLM");
  EXPECT_EQ(info.max_model_len(), 512);
  EXPECT_EQ(info.vocab_size(), 512);
  EXPECT_TRUE(info.has_chat_template());
  const std::vector<int32_t> eos(info.eos_token_ids().begin(), info.eos_token_ids().end());
  EXPECT_NE(std::find(eos.begin(), eos.end(), 2), eos.end()) << "</s> (2) is an end id";
  EXPECT_GT(info.num_kv_blocks(), 0);

  grpc::ClientContext c2;
  SetDeadline(c2);
  kaon::v1::ListModelsResponse models;
  ASSERT_TRUE(stub_->ListModels(&c2, {}, &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_EQ(models.models(0).id(), "stories260k");

  const Json c = Golden()["cases"][0];
  kaon::v1::TokenizeRequest treq;
  treq.set_text(c["prompt"].get<std::string>());
  treq.set_return_token_strs(true);
  grpc::ClientContext c3;
  SetDeadline(c3);
  kaon::v1::TokenizeResponse tok;
  ASSERT_TRUE(stub_->Tokenize(&c3, treq, &tok).ok());
  EXPECT_EQ(std::vector<int32_t>(tok.tokens().begin(), tok.tokens().end()),
            c["prompt_token_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(tok.count(), tok.tokens_size());
  EXPECT_EQ(tok.token_strs_size(), tok.tokens_size());

  kaon::v1::DetokenizeRequest dreq;
  for (int32_t id : c["greedy_token_ids"].get<std::vector<int32_t>>()) dreq.add_tokens(id);
  grpc::ClientContext c4;
  SetDeadline(c4);
  kaon::v1::DetokenizeResponse text;
  ASSERT_TRUE(stub_->Detokenize(&c4, dreq, &text).ok());
  EXPECT_FALSE(text.text().empty());

  kaon::v1::GetModelInfoRequest wrong;
  wrong.set_model("nope");
  grpc::ClientContext c5;
  SetDeadline(c5);
  EXPECT_EQ(stub_->GetModelInfo(&c5, wrong, &info).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcTest, HealthServing) {
  auto health = grpc::health::v1::Health::NewStub(server_->Channel());
  for (const char* service : {"", "kaon.v1.Generation"}) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse res;
    ASSERT_TRUE(health->Check(&ctx, req, &res).ok()) << service;
    EXPECT_EQ(res.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
}

// Server reflection, as grpcurl uses it: list_services over the v1alpha
// bidi stream, with the request and response handled as raw protobuf bytes.
TEST_F(GrpcTest, ReflectionListsTheService) {
  grpc::GenericStub generic(server_->Channel());
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      generic.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag = nullptr;
  bool ok = false;
  auto wait = [&](intptr_t want) {
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), want);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(wait(1));
  // ServerReflectionRequest{list_services: ""}: field 7, length-delimited, empty.
  const char request_bytes[] = {0x3a, 0x00};
  grpc::Slice slice(request_bytes, sizeof request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(wait(2));
  call->WritesDone(reinterpret_cast<void*>(3));
  ASSERT_TRUE(wait(3));
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(4));
  ASSERT_TRUE(wait(4));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_NE(bytes.find("kaon.v1.Generation"), std::string::npos);
  EXPECT_NE(bytes.find("grpc.health.v1.Health"), std::string::npos);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  wait(5);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// Servers with other flags.

TEST(GrpcQueueTest, FullQueueIsResourceExhaustedWithRetryHint) {
  GrpcServerProcess server;
  ASSERT_TRUE(server.Start({"--max-num-seqs", "1", "--max-num-queued-requests", "1"}));
  auto stub = kaon::v1::Generation::NewStub(server.Channel());
  constexpr int kCalls = 8;
  std::vector<grpc::Status> statuses(kCalls);
  std::vector<std::string> retry(kCalls);
  std::vector<int> tokens(kCalls, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      grpc::ClientContext ctx;
      SetDeadline(ctx);
      GenerateResponse r;
      statuses[i] = stub->Complete(&ctx, Greedy("Once upon a time", 480), &r);
      if (r.choices_size() == 1) tokens[i] = r.choices(0).token_ids_size();
      auto it = ctx.GetServerTrailingMetadata().find("retry-after-ms");
      if (it != ctx.GetServerTrailingMetadata().end()) retry[i] = std::string(it->second.data(), it->second.size());
    });
  }
  for (std::thread& t : threads) t.join();
  int ok = 0, refused = 0;
  for (int i = 0; i < kCalls; ++i) {
    if (statuses[i].ok()) {
      ++ok;
      EXPECT_EQ(tokens[i], 480);
    } else {
      ++refused;
      EXPECT_EQ(statuses[i].error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << statuses[i].error_message();
      EXPECT_EQ(retry[i], "1000");
    }
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(refused, 1) << "none of " << kCalls << " simultaneous calls was refused";
}

TEST(GrpcAuthTest, ApiKeyFromMetadata) {
  GrpcServerProcess server;
  ASSERT_TRUE(server.Start({"--api-key", "sekret-123"}));
  auto stub = kaon::v1::Generation::NewStub(server.Channel());
  auto call = [&](const char* authorization) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    if (authorization != nullptr) ctx.AddMetadata("authorization", authorization);
    GenerateResponse r;
    return stub->Complete(&ctx, Greedy("Hi", 4), &r).error_code();
  };
  EXPECT_EQ(call(nullptr), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("Bearer wrong"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("sekret-123"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("Bearer sekret-123"), grpc::StatusCode::OK);
  // Streams too.
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  auto reader = stub->Generate(&ctx, Greedy("Hi", 4));
  GenerateResponse m;
  while (reader->Read(&m)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Probes need no key.
  auto health = grpc::health::v1::Health::NewStub(server.Channel());
  grpc::ClientContext hctx;
  SetDeadline(hctx);
  grpc::health::v1::HealthCheckResponse res;
  ASSERT_TRUE(health->Check(&hctx, {}, &res).ok());
  EXPECT_EQ(res.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST(GrpcAuthTest, ApiKeyFromEnvironment) {
  GrpcServerProcess server;
  ASSERT_TRUE(server.Start({}, {"KAON_API_KEY=env-key"}));
  auto stub = kaon::v1::Generation::NewStub(server.Channel());
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  kaon::v1::ListModelsResponse r;
  EXPECT_EQ(stub->ListModels(&ctx, {}, &r).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext ok_ctx;
  SetDeadline(ok_ctx);
  ok_ctx.AddMetadata("authorization", "Bearer env-key");
  EXPECT_TRUE(stub->ListModels(&ok_ctx, {}, &r).ok());
}

// SIGTERM while streams are in flight: they run to completion, then the
// process exits 0.
TEST(GrpcDrainTest, SigtermLetsInFlightStreamsFinish) {
  GrpcServerProcess server;
  ASSERT_TRUE(server.Start({}));
  auto stub = kaon::v1::Generation::NewStub(server.Channel());
  constexpr int kStreams = 4;
  constexpr int64_t kMaxTokens = 450;
  std::atomic<int> started{0};
  std::vector<StreamResult> results(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      grpc::ClientContext ctx;
      SetDeadline(ctx);
      auto reader = stub->Generate(&ctx, Greedy("Once upon a time", kMaxTokens));
      GenerateResponse m;
      StreamResult& out = results[i];
      while (reader->Read(&m)) {
        if (++out.messages == 1) started.fetch_add(1);
        for (const kaon::v1::Choice& c : m.choices()) {
          out.token_ids.insert(out.token_ids.end(), c.token_ids().begin(), c.token_ids().end());
        }
        // Read slowly at first, so the streams are still open when the signal lands.
        if (out.messages < 20) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      out.status = reader->Finish();
    });
  }
  while (started.load() < kStreams) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server.Signal(SIGTERM);
  for (std::thread& t : threads) t.join();
  for (const StreamResult& r : results) {
    EXPECT_TRUE(r.status.ok()) << r.status.error_code() << " " << r.status.error_message();
    EXPECT_EQ(r.token_ids.size(), static_cast<size_t>(kMaxTokens));
  }
  EXPECT_EQ(server.WaitExit(20), 0);
}

}  // namespace
}  // namespace kaon::testing
