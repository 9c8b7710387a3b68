#include "bench/kaon_bench/grpc_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <utility>
#include <vector>

#include "kaon/v1/kaon.grpc.pb.h"
#include "nlohmann/json.hpp"

namespace kaon::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

const char* CodeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN_CODE";
  }
}

std::string StatusText(const grpc::Status& s) {
  std::string msg = s.error_message();
  if (msg.size() > 300) msg = msg.substr(0, 300) + "...";
  return std::string("gRPC ") + CodeName(s.error_code()) + ": " + msg;
}

// Protobuf strings must be UTF-8; random token ids can decode to anything.
// Invalid sequences become U+FFFD, exactly as the HTTP body's JSON does.
std::string ValidUtf8(const std::string& s) {
  using Json = nlohmann::json;
  return Json::parse(Json(s).dump(-1, ' ', false, Json::error_handler_t::replace)).get<std::string>();
}

void SetDeadline(grpc::ClientContext& ctx, double timeout_s) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(std::min(timeout_s, 1e9) * 1000)));
}

void SetAuth(grpc::ClientContext& ctx, const std::string& api_key) {
  if (!api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + api_key);
}

// One streamed Generate. Deletes itself in OnDone, after `done`.
class GenerateReactor final : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  GenerateReactor(v1::Generation::Stub* stub, v1::GenerateRequest request, const GrpcGenerateOptions& o,
                  Clock::time_point run_start, RequestOutput* out, std::function<void()> done)
      : request_(std::move(request)), run_start_(run_start), out_(out), done_(std::move(done)) {
    SetDeadline(ctx_, o.timeout_s);
    SetAuth(ctx_, o.api_key);
    out_->start_s = Since(run_start_);
    stub->async()->Generate(&ctx_, &request_, this);
    StartRead(&message_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is over; OnDone follows with the status
    const double t = Since(run_start_);
    std::string text;
    int64_t ids = 0;
    for (const v1::Choice& c : message_.choices()) {
      text += c.text();
      ids += c.token_ids_size();
    }
    token_ids_ += ids;
    if (!text.empty() || ids > 0) {
      if (out_->content_chunks == 0) {
        out_->ttft_s = t - out_->start_s;
      } else {
        out_->itl_s.push_back(t - last_content_t_);
      }
      last_content_t_ = t;
      ++out_->content_chunks;
      out_->generated_text += text;
    }
    if (message_.has_usage()) {
      out_->prompt_tokens = message_.usage().prompt_tokens();
      out_->output_tokens = message_.usage().completion_tokens();
      out_->usage_reported = true;
    }
    message_.Clear();
    StartRead(&message_);
  }

  void OnDone(const grpc::Status& s) override {
    out_->latency_s = Since(run_start_) - out_->start_s;
    if (!s.ok()) {
      out_->success = false;
      out_->error = StatusText(s);
    } else {
      // An empty completion (immediate EOS) that ended with OK is a success;
      // its TTFT is then the whole latency.
      if (out_->content_chunks == 0) out_->ttft_s = out_->latency_s;
      // Without usage, count the token ids the stream carried.
      if (!out_->usage_reported) out_->output_tokens = token_ids_;
      out_->success = true;
    }
    std::function<void()> done = std::move(done_);
    delete this;
    done();
  }

 private:
  grpc::ClientContext ctx_;
  v1::GenerateRequest request_;
  v1::GenerateResponse message_;
  Clock::time_point run_start_;
  RequestOutput* out_;
  std::function<void()> done_;
  double last_content_t_ = 0;
  int64_t token_ids_ = 0;
};

}  // namespace

std::string ParseGrpcTarget(const std::string& url) {
  std::string rest = url;
  const std::string scheme = "grpc://";
  if (rest.rfind(scheme, 0) == 0) rest = rest.substr(scheme.size());
  else if (rest.find("://") != std::string::npos)
    throw std::runtime_error("--backend kaon-grpc takes --base-url grpc://host:port or host:port (got " + url + ")");
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  const bool has_port = colon != std::string::npos && rest.find(']', colon) == std::string::npos;
  if (!has_port || colon == 0 || colon + 1 >= rest.size() || rest.find('/') != std::string::npos ||
      rest.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
    throw std::runtime_error("--base-url for kaon-grpc must be grpc://host:port or host:port (got " + url + ")");
  }
  return rest;
}

int GrpcChannelsFor(int max_concurrency, int requests) {
  const int streams = max_concurrency > 0 ? std::min(max_concurrency, std::max(requests, 1)) : std::max(requests, 1);
  return std::clamp((streams + 63) / 64, 1, 64);
}

struct GrpcClient::Impl {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::Generation::Stub>> stubs;
  std::atomic<size_t> next{0};
};

GrpcClient::GrpcClient(const std::string& target, int channels) : target_(target), impl_(std::make_unique<Impl>()) {
  for (int i = 0; i < std::max(channels, 1); ++i) {
    grpc::ChannelArguments args;
    // Distinct connections, not one subchannel shared by every channel.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("kaon.bench.channel", i);
    args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, -1);
    auto ch = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    impl_->stubs.push_back(v1::Generation::NewStub(ch));
    impl_->channels.push_back(std::move(ch));
  }
}

GrpcClient::~GrpcClient() = default;

void GrpcClient::StartGenerate(const GrpcGenerateOptions& o, const std::string& prompt, int64_t max_tokens,
                               Clock::time_point run_start, RequestOutput* out, std::function<void()> done) {
  v1::GenerateRequest req;
  req.set_model(o.model);
  req.set_text(ValidUtf8(prompt));
  req.set_max_tokens(max_tokens);
  req.set_temperature(static_cast<float>(o.temperature));
  if (o.ignore_eos) req.set_ignore_eos(true);
  v1::Generation::Stub* stub = impl_->stubs[impl_->next.fetch_add(1) % impl_->stubs.size()].get();
  new GenerateReactor(stub, std::move(req), o, run_start, out, std::move(done));
}

std::string GrpcClient::FirstModel(const std::string& api_key, double timeout_s) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, timeout_s);
  SetAuth(ctx, api_key);
  v1::ListModelsResponse resp;
  const grpc::Status s = impl_->stubs[0]->ListModels(&ctx, v1::ListModelsRequest(), &resp);
  if (!s.ok()) throw std::runtime_error("--model not given and ListModels at " + target_ + " failed: " + StatusText(s));
  if (resp.models_size() == 0 || resp.models(0).id().empty())
    throw std::runtime_error("--model not given and ListModels lists no model");
  return resp.models(0).id();
}

std::optional<int64_t> GrpcClient::CountTokens(const std::string& model, const std::string& text,
                                               const std::string& api_key, double timeout_s) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, timeout_s);
  SetAuth(ctx, api_key);
  v1::TokenizeRequest req;
  req.set_model(model);
  req.set_text(ValidUtf8(text));
  req.set_add_special_tokens(false);
  v1::TokenizeResponse resp;
  if (!impl_->stubs[0]->Tokenize(&ctx, req, &resp).ok()) return std::nullopt;
  return resp.count();
}

}  // namespace kaon::bench
