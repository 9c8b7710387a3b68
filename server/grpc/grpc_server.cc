#include "server/grpc/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "server/common/work_pool.h"
#include "server/grpc/generation_service.h"
#include "server/api/serving_state.h"
#include "server/grpc/call_registry.h"

namespace kaon::grpc_api {

namespace {
constexpr const char* kServiceName = "kaon.v1.Generation";
constexpr std::chrono::milliseconds kDrainLinger{1000};
// The server's own pool and serving state, when the options lend none.
std::unique_ptr<WorkPool> OwnPool(const GrpcOptions& o) {
  return o.pool != nullptr ? nullptr : std::make_unique<WorkPool>(WorkPoolOptions{});
}
std::unique_ptr<api::ServingState> OwnState(const GrpcOptions& o) {
  return o.state != nullptr ? nullptr : std::make_unique<api::ServingState>();
}

}  // namespace

struct GrpcServer::Impl {
  explicit Impl(const GrpcOptions& o)
      : options(o),
        own_pool(OwnPool(o)),
        own_state(OwnState(o)),
        serving(o.state != nullptr ? o.state : own_state.get()),
        calls(serving, o.num_worker_threads),
        service(&calls, o.api_key, o.pool != nullptr ? o.pool : own_pool.get(), o.inline_request_bytes) {}

  // The shared state's transitions, as seen here (on the transitioning
  // thread: it only flips health and wakes calls).
  void OnPhase(ServingPhase phase) {
    if (phase == ServingPhase::kDraining) calls.NoteDrain();
    if (phase == ServingPhase::kFailed) calls.WakeAll();
    SetHealth(phase == ServingPhase::kReady);
  }

  void SetHealth(bool serving) {
    grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
    if (health == nullptr) return;
    health->SetServingStatus("", serving);
    health->SetServingStatus(kServiceName, serving);
  }

  GrpcOptions options;
  std::unique_ptr<WorkPool> own_pool;  // outlives the server and its calls
  std::unique_ptr<api::ServingState> own_state;
  api::ServingState* serving;
  CallRegistry calls;  // outlives the server: calls finish before it goes
  GenerationService service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  int listener = -1;  // serving's subscription
  std::once_flag shutdown_once;
};

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Create(GrpcOptions options) {
  if (options.max_message_bytes == 0 || options.max_message_bytes > size_t{INT32_MAX}) {
    return absl::InvalidArgumentError("the gRPC message size limit must be in [1, 2^31)");
  }
  auto impl = std::make_unique<Impl>(options);
  // Both are process-wide switches read when a server is built.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  const std::string host = options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host;
  builder.AddListeningPort(absl::StrCat(host, ":", options.port), grpc::InsecureServerCredentials(), &impl->port);
  // gRPC sets SO_REUSEPORT by default, which would let a second server
  // "bind" a port already in use and split its traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.RegisterService(&impl->service);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", host, ":", options.port));
  }
  Impl* raw = impl.get();
  impl->listener = impl->serving->Subscribe([raw](ServingPhase phase) { raw->OnPhase(phase); });
  impl->SetHealth(impl->serving->phase() == ServingPhase::kReady);  // NOT_SERVING until the model has loaded
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
}

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcServer::~GrpcServer() { Shutdown(std::chrono::system_clock::now()); }

int GrpcServer::port() const { return impl_->port; }

void GrpcServer::Shutdown(std::chrono::system_clock::time_point deadline) {
  std::call_once(impl_->shutdown_once, [&] {
    // Shut down without a drain (a failure, or the destructor): the calls
    // live now are the ones to wait for.
    impl_->calls.NoteDrain();
    impl_->serving->Unsubscribe(impl_->listener);
    const bool had_streams = impl_->calls.calls_at_drain() > 0 || impl_->calls.num_calls() > 0;
    if (grpc::HealthCheckServiceInterface* health = impl_->server->GetHealthCheckService()) health->Shutdown();
    impl_->server->Shutdown(deadline);
    impl_->server->Wait();
    // A call is over for the server once its last bytes are handed to the
    // transport; a client still reading them when the process exits (and
    // its socket resets) loses the tail of its stream. Calls that were in
    // flight at the drain get a moment to be read.
    if (had_streams) {
      const auto linger = std::min<std::chrono::system_clock::duration>(
          kDrainLinger, std::max<std::chrono::system_clock::duration>(deadline - std::chrono::system_clock::now(),
                                                                      std::chrono::system_clock::duration::zero()));
      std::this_thread::sleep_for(linger);
    }
  });
}

}  // namespace kaon::grpc_api
