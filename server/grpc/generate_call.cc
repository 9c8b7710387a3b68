#include "server/grpc/generate_call.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>

#include <grpcpp/impl/codegen/proto_utils.h>

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
  EngineRequest(const api::ServingBackend& backend, api::ParsedRequest request,
                metrics::RequestRecorder::Clock::time_point arrival)
      : backend_(backend), request_(std::move(request)), arrival_(arrival) {}

  std::optional<api::ApiError> Submit() {
    // TTFT counts from the call's arrival, parsing included, as over HTTP.
    recorder_ = std::make_unique<metrics::RequestRecorder>(
        backend_.metrics, static_cast<int64_t>(request_.prompts[0].size()), request_.params.n, arrival_);
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
  metrics::RequestRecorder::Clock::time_point arrival_;
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
class CallBase : public Wakeable, public PendingCall {
 public:
  CallBase(CallRegistry* state, const api::ServingBackend& backend, grpc::CallbackServerContext* context)
      : state_(state), backend_(backend), context_(context) {
    link_->call = this;
  }

  void Wake() override {
    {
      std::lock_guard<std::mutex> lock(wake_mu_);
      if (gone_ || wake_queued_) return;  // one queued wake-up covers every event before it runs
      wake_queued_ = true;
      ++refs_;
    }
    // Never refused: the queue is unbounded and outlives every call.
    state_->queue().TryPost([this] {
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

  void Begin(api::ParseResult parsed) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto* e = std::get_if<api::ApiError>(&parsed)) return FinishLocked(ErrorStatus(*e, context_));
      // The client left while the request was being parsed.
      if (cancelled_) return FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
      engine_request_ =
          std::make_unique<EngineRequest>(backend_, std::move(std::get<api::ParsedRequest>(parsed)), arrival_);
      if (std::optional<api::ApiError> e = engine_request_->Submit()) {
        engine_request_.reset();
        return FinishLocked(ErrorStatus(*e, context_));
      }
      state_->Register(this);
      registered_ = true;
      begun_ = true;
      engine_request_->SetNotify([link = link_] {
        std::lock_guard<std::mutex> l(link->mu);
        if (link->call != nullptr) link->call->Wake();
      });
      OnBegunLocked();
    }
    Wake();  // events may have arrived before the notify was set
  }

 protected:
  // Where notify callbacks find the call; cleared in Done, because the
  // engine may still notify after the handle is gone.
  struct Link {
    std::mutex mu;
    CallBase* call = nullptr;
  };

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
    if (state_->serving().phase() == ServingPhase::kFailed) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "engine failed: " + state_->serving().fail_reason());
    }
    return std::nullopt;
  }

  // Ends the call (before it began, or on an error) with `status`.
  virtual void FinishLocked(const grpc::Status& status) = 0;
  // Right after a successful Submit.
  virtual void OnBegunLocked() {}
  virtual void PumpLocked() = 0;

  CallRegistry* state_;
  api::ServingBackend backend_;
  grpc::CallbackServerContext* context_;  // gRPC's, valid until OnDone
  const metrics::RequestRecorder::Clock::time_point arrival_ = metrics::RequestRecorder::Clock::now();
  std::mutex mu_;
  bool begun_ = false;      // submitted; until then the reactor only waits for Begin
  bool done_ = false;       // OnDone ran
  bool finished_ = false;   // Finish (or StartWriteAndFinish) was called
  bool cancelled_ = false;  // OnCancel, or a write failed
  std::unique_ptr<EngineRequest> engine_request_;  // null before Begin and once dropped (request aborted)

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

class GenerateStream : public grpc::ServerWriteReactor<grpc::ByteBuffer>, public CallBase {
 public:
  using CallBase::CallBase;

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
  void FinishLocked(const grpc::Status& status) override {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  void PumpLocked() override {
    if (finished_ || !begun_) return;
    if (std::optional<grpc::Status> stop = MustStopLocked()) {
      engine_request_.reset();  // aborts the request, frees its blocks
      // Finish waits for the write in flight; OnWriteDone comes back here.
      if (!write_in_flight_) FinishLocked(*stop);
      return;
    }
    if (write_in_flight_) return;  // OnWriteDone drains what arrived meanwhile
    response_.Clear();
    bool any = engine_request_->Drain(&response_);
    if (!engine_request_->error().empty()) {
      const std::string error = engine_request_->error();
      engine_request_.reset();
      FinishLocked(grpc::Status(grpc::StatusCode::INTERNAL, error));
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
      SerializeResponse(response_, &wire_);
      StartWriteAndFinish(&wire_, grpc::WriteOptions(), grpc::Status::OK);
      return;
    }
    if (any) {
      write_in_flight_ = true;
      SerializeResponse(response_, &wire_);
      StartWrite(&wire_);
    }
  }

  GenerateResponse response_;
  grpc::ByteBuffer wire_;  // the message being written; untouched while a write is in flight
  bool write_in_flight_ = false;
  bool first_ = true;
};

class CompleteCall : public grpc::ServerUnaryReactor, public CallBase {
 public:
  CompleteCall(CallRegistry* state, const api::ServingBackend& backend, grpc::CallbackServerContext* context,
               grpc::ByteBuffer* response)
      : CallBase(state, backend, context), wire_(response) {}

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    PumpLocked();
  }
  void OnDone() override { Done(); }

 private:
  void FinishLocked(const grpc::Status& status) override {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }
  void OnBegunLocked() override { engine_request_->FillHeader(&response_); }

  void PumpLocked() override {
    if (finished_ || !begun_) return;
    if (std::optional<grpc::Status> stop = MustStopLocked()) {
      engine_request_.reset();
      FinishLocked(*stop);
      return;
    }
    engine_request_->Drain(&response_);
    if (!engine_request_->error().empty()) {
      const std::string error = engine_request_->error();
      engine_request_.reset();
      FinishLocked(grpc::Status(grpc::StatusCode::INTERNAL, error));
      return;
    }
    if (!engine_request_->done()) return;
    auto* choices = response_.mutable_choices();
    std::sort(choices->begin(), choices->end(),
              [](const kaon::v1::Choice& a, const kaon::v1::Choice& b) { return a.index() < b.index(); });
    engine_request_->FillUsage(response_.mutable_usage());
    engine_request_.reset();
    SerializeResponse(response_, wire_);
    FinishLocked(grpc::Status::OK);
  }

  GenerateResponse response_;
  grpc::ByteBuffer* wire_;  // gRPC's, valid until OnDone
};

class RefusedStream : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit RefusedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

NewCall<grpc::ServerWriteReactor<grpc::ByteBuffer>> NewGenerate(CallRegistry* state, const api::ServingBackend& backend,
                                                                grpc::CallbackServerContext* context) {
  auto* call = new GenerateStream(state, backend, context);
  return {call, call};
}

NewCall<grpc::ServerUnaryReactor> NewComplete(CallRegistry* state, const api::ServingBackend& backend,
                                              grpc::CallbackServerContext* context, grpc::ByteBuffer* response) {
  auto* call = new CompleteCall(state, backend, context, response);
  return {call, call};
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* RefuseStream(const grpc::Status& status) {
  return new RefusedStream(status);
}

grpc::Status ParseRequestBytes(const grpc::ByteBuffer& bytes, google::protobuf::Message* out) {
  grpc::ByteBuffer copy(bytes);  // shares the slices; parsing consumes the buffer
  grpc::Status s = grpc::SerializationTraits<google::protobuf::Message>::Deserialize(&copy, out);
  if (s.ok()) return s;
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "the request is not a valid " + out->GetDescriptor()->full_name() +
                          " message (malformed protobuf, or a string that is not UTF-8)");
}

void SerializeResponse(const google::protobuf::Message& message, grpc::ByteBuffer* out) {
  out->Clear();  // the writer needs an empty buffer; a stream reuses one per message
  bool own_buffer = false;
  // Serializing a message we built cannot fail short of running out of memory.
  static_cast<void>(grpc::SerializationTraits<google::protobuf::Message>::Serialize(message, out, &own_buffer));
}

}  // namespace kaon::grpc_api
