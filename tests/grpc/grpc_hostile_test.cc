// What a hostile or careless gRPC client sends, against the real `kaon serve
// --grpc-port 0`: bytes that are not a GenerateRequest, JSON-text fields
// nested to overflow a recursive parser, more messages or tools than the
// limits allow, max_tokens near 2^63. Each gets INVALID_ARGUMENT naming what
// was wrong, and the server keeps serving.
#include <grpcpp/generic/generic_stub.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <utility>

#include "tests/grpc/grpc_test_util.h"

namespace kaon::testing {
namespace {

using kaon::v1::GenerateRequest;
using kaon::v1::GenerateResponse;

class GrpcHostileTest : public GrpcServerSuite {
 protected:
  grpc::Status Complete(const GenerateRequest& req) {
    grpc::ClientContext ctx;
    SetDeadline(ctx, std::chrono::seconds(30));
    GenerateResponse resp;
    return stub_->Complete(&ctx, req, &resp);
  }

  // The server still answers a small request (it did not crash or stall).
  void ExpectStillServing() {
    GenerateRequest r;
    r.set_text("Once upon a time");
    r.set_max_tokens(4);
    r.set_temperature(0);
    grpc::Status s = Complete(r);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }

  // A unary call with raw request bytes, as a client with another (or a
  // broken) schema would send them.
  grpc::Status RawCall(const std::string& method, const std::string& bytes) {
    grpc::GenericStub generic(server_->Channel());
    grpc::ClientContext ctx;
    SetDeadline(ctx, std::chrono::seconds(10));
    grpc::Slice slice(bytes.data(), bytes.size());
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    grpc::Status status;
    generic.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
      std::lock_guard<std::mutex> lock(mu);
      status = std::move(s);
      done = true;
      cv.notify_one();
    });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
    return status;
  }

};

std::string NestedArrays(int depth) { return std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']'); }

GenerateRequest Chat(const std::string& content) {
  GenerateRequest r;
  kaon::v1::ChatMessage* m = r.mutable_chat()->add_messages();
  m->set_role("user");
  m->set_content(content);
  r.set_max_tokens(4);
  r.set_temperature(0);
  return r;
}

TEST_F(GrpcHostileTest, BytesThatAreNotAMessageAreInvalidArgument) {
  // Field 1 (text) claims 100 bytes and has 3; then a string that is not UTF-8.
  for (const std::string& bytes : {std::string("\x0a\x64" "abc", 5), std::string("\x0a\x02\xff\xfe", 4),
                                   std::string("\xff\xff\xff\xff\xff\xff", 6)}) {
    for (const char* method : {"/kaon.v1.Generation/Complete", "/kaon.v1.Generation/Tokenize"}) {
      grpc::Status s = RawCall(method, bytes);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method << ": " << s.error_message();
    }
  }
  ExpectStillServing();
}

TEST_F(GrpcHostileTest, DeepJsonTextFieldsAreRefusedAtTheDepthLimit) {
  // 128 levels is the default limit: just below is served, just above is
  // refused as too deep, and a million levels (which overflowed the stack of
  // a recursive parser) likewise.
  for (int depth : {127, 129, 1'000'000}) {
    GenerateRequest kwargs = Chat("hi");
    kwargs.mutable_chat()->set_chat_template_kwargs("{\"a\":" + NestedArrays(depth - 1) + "}");
    GenerateRequest tools = Chat("hi");
    tools.mutable_chat()->add_tools("{\"type\": \"function\", \"x\": " + NestedArrays(depth - 1) + "}");
    for (const auto& [field, req] : {std::pair{"chat_template_kwargs", kwargs}, std::pair{"tools[0]", tools}}) {
      grpc::Status s = Complete(req);
      if (depth <= 128) {
        EXPECT_TRUE(s.ok()) << field << " at depth " << depth << ": " << s.error_message();
      } else {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field << " at depth " << depth;
        EXPECT_NE(s.error_message().find(field), std::string::npos) << s.error_message();
        EXPECT_NE(s.error_message().find("deeper than 128"), std::string::npos) << s.error_message();
      }
    }
  }
  ExpectStillServing();
}

TEST_F(GrpcHostileTest, TooManyMessagesOrToolsNameTheLimit) {
  GenerateRequest many = Chat("hi");
  for (int i = 0; i < 10'000; ++i) *many.mutable_chat()->add_messages() = many.chat().messages(0);
  grpc::Status s = Complete(many);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("10000"), std::string::npos) << s.error_message();

  GenerateRequest tools = Chat("hi");
  for (int i = 0; i < 129; ++i) tools.mutable_chat()->add_tools(R"({"type": "function"})");
  s = Complete(tools);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("128"), std::string::npos) << s.error_message();
  ExpectStillServing();
}

TEST_F(GrpcHostileTest, MaxTokensNearTwoToThe63IsInvalidArgument) {
  GenerateRequest r;
  r.set_text("Once upon a time");
  r.set_max_tokens(INT64_MAX);
  grpc::Status s = Complete(r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("maximum context length"), std::string::npos) << s.error_message();
}

}  // namespace
}  // namespace kaon::testing
