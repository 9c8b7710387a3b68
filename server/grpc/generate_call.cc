#include "server/grpc/generate_call.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "server/engine/engine.h"
#include "server/grpc/grpc_status.h"
#include "server/grpc/proto_convert.h"
#include "server/metrics/request_recorder.h"

namespace kaon::grpc_api {
namespace {

using kaon::v1::GenerateResponse;

// One engine request (the call's prompt and its n choices) and its metrics.
// Not thread-safe: the owning call serializes access under its mutex.
class EngineRequest {
 public:
  EngineRequest(const api::ServingBackend& backend, api::ParsedRequest request)
      : backend_(backend), request_(std::move(request)) {}

  std::optional<api::ApiError> Submit() {
    // Created right before Submit so TTFT counts from here, as over HTTP.
    recorder_ = std::make_unique<metrics::RequestRecorder>(
        backend_.metrics, static_cast<int64_t>(request_.prompts[0].size()), request_.params.n);
    absl::StatusOr<std::unique_ptr<RequestHandle>> h = backend_.engine->Submit(api::ToGenerationRequest(request_, 0));
    if (!h.ok()) {
      recorder_.reset();  // never started: not an aborted request
      return api::ApiErrorFromStatus(h.status());
    }
    handle_ = std::move(*h);
    return std::nullopt;
  }

  void SetNotify(std::function<void()> notify) { handle_->SetNotify(std::move(notify)); }

  // Moves the ready events into `out`, merged into one Choice per index.
  // Returns whether anything was added.
  bool Drain(GenerateResponse* out) {
    bool added = false;
    while (std::optional<RequestOutput> ev = handle_->TryNext()) {
      recorder_->Observe(*ev);
      if (!ev->error.empty() && error_.empty()) error_ = ev->error;
      if (ev->usage) cached_tokens_ = std::max(cached_tokens_, ev->usage->cached_tokens);
      completion_tokens_ += static_cast<int64_t>(ev->token_ids.size());
      kaon::v1::Choice* choice = nullptr;
      for (kaon::v1::Choice& c : *out->mutable_choices()) {
        if (c.index() == ev->index) choice = &c;
      }
      if (choice == nullptr) choice = out->add_choices();
      AppendEvent(*ev, choice);
      added = true;
    }
    return added;
  }

  bool done() const { return handle_->done(); }
  const std::string& error() const { return error_; }

  void FillHeader(GenerateResponse* out) const {
    out->set_model(request_.model);
    for (int32_t id : request_.prompts[0]) out->add_prompt_token_ids(id);
  }
  void FillUsage(kaon::v1::Usage* usage) const {
    const int64_t prompt = static_cast<int64_t>(request_.prompts[0].size());
    usage->set_prompt_tokens(prompt);
    usage->set_completion_tokens(completion_tokens_);
    usage->set_total_tokens(prompt + completion_tokens_);
    usage->set_cached_tokens(cached_tokens_);
  }

 private:
  api::ServingBackend backend_;
  api::ParsedRequest request_;
  // Declared before the handle so the handle goes first: the abort reaches
  // the engine before the recorder counts the choices as aborted.
  std::unique_ptr<metrics::RequestRecorder> recorder_;
  std::unique_ptr<RequestHandle> handle_;
  int64_t completion_tokens_ = 0;
  int64_t cached_tokens_ = 0;
  std::string error_;
};

// What both reactors share: the engine request, wake-ups through the work
// queue, and a reference count, because a queued wake-up may still run after
// gRPC's OnDone (the call is deleted when the last of them lets go).
//
// Locks: mu_ guards the call and is held while touching the engine handle;
// wake_mu_ guards only the counters and is never held while taking another
// lock except the queue's, so the engine thread's notify (which takes
// link_->mu then wake_mu_) can never wait on a call that is itself waiting
// on the engine.
class CallBase : public Wakeable {
 public:
  CallBase(ServingState* state, const api::ServingBackend& backend, api::ParsedRequest request)
      : state_(state), engine_request_(std::make_unique<EngineRequest>(backend, std::move(request))) {
    link_->call = this;
  }

  void Wake() override {
    {
      std::lock_guard<std::mutex> lock(wake_mu_);
      if (gone_ || wake_queued_) return;  // one queued wake-up covers every event before it runs
      wake_queued_ = true;
      ++refs_;
    }
    state_->queue().Post([this] {
      {
        std::lock_guard<std::mutex> lock(wake_mu_);
        wake_queued_ = false;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!done_) PumpLocked();
      }
      Unref();
    });
  }

 protected:
  // Where notify callbacks find the call; cleared in Done, because the
  // engine may still notify after the handle is gone.
  struct Link {
    std::mutex mu;
    CallBase* call = nullptr;
  };

  // Submits and arms the notify; an error when the engine refuses.
  std::optional<api::ApiError> Begin() {
    std::lock_guard<std::mutex> lock(mu_);
    if (std::optional<api::ApiError> e = engine_request_->Submit()) return e;
    state_->Register(this);
    registered_ = true;
    engine_request_->SetNotify([link = link_] {
      std::lock_guard<std::mutex> l(link->mu);
      if (link->call != nullptr) link->call->Wake();
    });
    return std::nullopt;
  }

  // From OnDone: gRPC is finished with the call.
  void Done() {
    {
      std::lock_guard<std::mutex> lock(link_->mu);
      link_->call = nullptr;
    }
    if (registered_) state_->Unregister(this);
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      engine_request_.reset();
    }
    {
      std::lock_guard<std::mutex> lock(wake_mu_);
      gone_ = true;
    }
    Unref();
  }

  // Why the call must end now regardless of the engine: the client is gone
  // or the whole engine failed.
  std::optional<grpc::Status> MustStopLocked() const {
    if (cancelled_) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client");
    if (state_->phase() == ServingPhase::kFailed) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "engine failed: " + state_->fail_reason());
    }
    return std::nullopt;
  }

  virtual void PumpLocked() = 0;

  ServingState* state_;
  std::mutex mu_;
  bool done_ = false;       // OnDone ran
  bool finished_ = false;   // Finish (or StartWriteAndFinish) was called
  bool cancelled_ = false;  // OnCancel, or a write failed
  std::unique_ptr<EngineRequest> engine_request_;  // null once dropped (request aborted)

 private:
  void Unref() {
    bool last = false;
    {
      std::lock_guard<std::mutex> lock(wake_mu_);
      last = --refs_ == 0;
    }
    if (last) delete this;
  }

  std::shared_ptr<Link> link_ = std::make_shared<Link>();
  bool registered_ = false;
  std::mutex wake_mu_;
  int refs_ = 1;  // gRPC's, until OnDone
  bool wake_queued_ = false;
  bool gone_ = false;
};

class GenerateStream : public grpc::ServerWriteReactor<GenerateResponse>, public CallBase {
 public:
  using CallBase::CallBase;

  void Start(grpc::CallbackServerContext* context) {
    if (std::optional<api::ApiError> e = Begin()) {
      std::lock_guard<std::mutex> lock(mu_);
      finished_ = true;
      engine_request_.reset();
      Finish(ErrorStatus(*e, context));
      return;
    }
    Wake();  // events may have arrived before the notify was set
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    write_in_flight_ = false;
    if (!ok) cancelled_ = true;  // the stream broke
    PumpLocked();
  }
  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    PumpLocked();
  }
  void OnDone() override { Done(); }

 private:
  void PumpLocked() override {
    if (finished_) return;
    if (std::optional<grpc::Status> stop = MustStopLocked()) {
      engine_request_.reset();  // aborts the request, frees its blocks
      // Finish waits for the write in flight; OnWriteDone comes back here.
      if (!write_in_flight_) {
        finished_ = true;
        Finish(*stop);
      }
      return;
    }
    if (write_in_flight_) return;  // OnWriteDone drains what arrived meanwhile
    response_.Clear();
    bool any = engine_request_->Drain(&response_);
    if (!engine_request_->error().empty()) {
      const std::string error = engine_request_->error();
      engine_request_.reset();
      finished_ = true;
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, error));
      return;
    }
    if (first_) {
      // The first message says which tokens the prompt became.
      engine_request_->FillHeader(&response_);
      first_ = false;
      any = true;
    }
    if (engine_request_->done()) {
      engine_request_->FillUsage(response_.mutable_usage());
      finished_ = true;
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
      return;
    }
    if (any) {
      write_in_flight_ = true;
      StartWrite(&response_);
    }
  }

  GenerateResponse response_;  // the message being written; untouched while a write is in flight
  bool write_in_flight_ = false;
  bool first_ = true;
};

class CompleteCall : public grpc::ServerUnaryReactor, public CallBase {
 public:
  CompleteCall(ServingState* state, const api::ServingBackend& backend, api::ParsedRequest request,
               GenerateResponse* response)
      : CallBase(state, backend, std::move(request)), response_(response) {}

  void Start(grpc::CallbackServerContext* context) {
    if (std::optional<api::ApiError> e = Begin()) {
      std::lock_guard<std::mutex> lock(mu_);
      finished_ = true;
      engine_request_.reset();
      Finish(ErrorStatus(*e, context));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      engine_request_->FillHeader(response_);
    }
    Wake();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    PumpLocked();
  }
  void OnDone() override { Done(); }

 private:
  void PumpLocked() override {
    if (finished_) return;
    if (std::optional<grpc::Status> stop = MustStopLocked()) {
      engine_request_.reset();
      finished_ = true;
      Finish(*stop);
      return;
    }
    engine_request_->Drain(response_);
    if (!engine_request_->error().empty()) {
      const std::string error = engine_request_->error();
      engine_request_.reset();
      finished_ = true;
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, error));
      return;
    }
    if (!engine_request_->done()) return;
    auto* choices = response_->mutable_choices();
    std::sort(choices->begin(), choices->end(),
              [](const kaon::v1::Choice& a, const kaon::v1::Choice& b) { return a.index() < b.index(); });
    engine_request_->FillUsage(response_->mutable_usage());
    engine_request_.reset();
    finished_ = true;
    Finish(grpc::Status::OK);
  }

  GenerateResponse* response_;  // gRPC's, valid until OnDone
};

class RefusedStream : public grpc::ServerWriteReactor<GenerateResponse> {
 public:
  explicit RefusedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerWriteReactor<GenerateResponse>* StartGenerate(ServingState* state, const api::ServingBackend& backend,
                                                          grpc::CallbackServerContext* context,
                                                          api::ParsedRequest request) {
  auto* call = new GenerateStream(state, backend, std::move(request));
  call->Start(context);
  return call;
}

grpc::ServerUnaryReactor* StartComplete(ServingState* state, const api::ServingBackend& backend,
                                        grpc::CallbackServerContext* context, api::ParsedRequest request,
                                        GenerateResponse* response) {
  auto* call = new CompleteCall(state, backend, std::move(request), response);
  call->Start(context);
  return call;
}

grpc::ServerWriteReactor<GenerateResponse>* RefuseStream(const grpc::Status& status) {
  return new RefusedStream(status);
}

}  // namespace kaon::grpc_api
