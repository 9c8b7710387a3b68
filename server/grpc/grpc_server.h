// The gRPC front end: kaon.v1.Generation (proto/kaon/v1/kaon.proto) on the
// C++ callback API, with the standard grpc.health.v1.Health service and
// server reflection, so grpcurl and Kubernetes gRPC probes work unmodified.
//
// Lifecycle, read from the api::ServingState it shares with the HTTP server:
// Create binds and serves at once with health NOT_SERVING (calls get
// UNAVAILABLE "loading"); ready → SERVING; draining → NOT_SERVING, new calls
// UNAVAILABLE, in-flight ones finish; failed → in-flight calls end INTERNAL;
// Shutdown waits for in-flight calls until a deadline, then cancels them.
// All methods are thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "server/api/serving_state.h"

namespace kaon {
class WorkPool;
}

namespace kaon::grpc_api {

struct GrpcOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: the kernel picks a free port (see port())
  std::optional<std::string> api_key;  // required as `authorization: Bearer KEY` on kaon.v1 calls
  size_t max_message_bytes = size_t{16} << 20;  // larger requests get RESOURCE_EXHAUSTED
  int num_worker_threads = 2;  // "kaon-grpc": drain engine events, start writes
  // Heavy request work (chat rendering, large requests, tokenization) runs
  // on this pool, borrowed (it must outlive the server); null: the server
  // makes its own. Requests up to inline_request_bytes that render no chat
  // template are parsed on gRPC's own threads.
  WorkPool* pool = nullptr;
  size_t inline_request_bytes = size_t{16} << 10;
  // The serving state shared with the other front ends, borrowed (it must
  // outlive the server, and its backend until Shutdown returns); null: the
  // server makes its own.
  api::ServingState* state = nullptr;
};

class GrpcServer {
 public:
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Create(GrpcOptions options);
  // Shuts down at once if Shutdown was not called.
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  int port() const;

  // Waits for in-flight calls until `deadline`, then cancels the rest;
  // returns once every call has ended. Idempotent.
  void Shutdown(std::chrono::system_clock::time_point deadline);

  struct Impl;

 private:
  explicit GrpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kaon::grpc_api
