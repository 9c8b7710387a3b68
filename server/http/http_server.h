// The OpenAI-compatible HTTP/1.1 front end: Boost.Beast on one io_context run
// by a few threads. Engine events reach a connection through
// RequestHandle::SetNotify, which posts to the connection's strand, so no
// thread is tied up per stream. Beast stays out of this header so that only
// http_server.cc pays its compile time.
//
// Lifecycle, read from the shared api::ServingState: Create binds; Start
// serves at once, with /health answering 503 "loading" until the state gets
// its backend, so probes and clients see a clear answer while a large model
// loads. A signal drains the state (every front end stops accepting and
// finishes in-flight requests, here up to shutdown_timeout); a failed state
// (a fatal engine error) answers every in-flight request with a 500 and
// stops. Wait returns once the io threads have ended.
#pragma once

#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/api/serving_backend.h"
#include "server/api/serving_state.h"

namespace kaon {
class WorkPool;
}

namespace kaon::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: the kernel picks a free port (see HttpServer::port)
  int num_threads = 2;
  size_t max_body_bytes = size_t{16} << 20;      // larger bodies get 413
  size_t max_header_bytes = size_t{32} << 10;    // request line and headers together; larger: 431 (or 414)
  size_t max_url_bytes = size_t{8} << 10;        // the request target; longer: 414
  std::chrono::seconds keep_alive_timeout{5};    // idle between requests, and for a request's headers
  std::chrono::seconds read_timeout{30};         // for a request's body; a body still incomplete then: 408
  // Heavy request work (large bodies, chat rendering, tokenization) runs on
  // this pool, borrowed (it must outlive the server); null: the server makes
  // its own. Bodies up to inline_body_bytes of routes that render no chat
  // template are handled on the I/O thread, where they cost microseconds and
  // never wait behind heavy ones.
  WorkPool* pool = nullptr;
  size_t inline_body_bytes = size_t{16} << 10;
  std::chrono::seconds write_timeout{30};        // a client that stops reading is dropped after this
  std::chrono::seconds shutdown_timeout{30};     // SIGTERM/SIGINT: how long in-flight requests may finish
  std::optional<std::string> api_key;            // required as a Bearer token on /v1 and tokenize routes
  std::vector<std::string> allowed_origins;      // CORS; empty: no CORS headers
  std::ostream* log = nullptr;                   // one line per request; null: no request log
  // The serving state shared with the other front ends, borrowed (it must
  // outlive the server); null: the server makes its own.
  api::ServingState* state = nullptr;
};

using Backend = api::ServingBackend;

class HttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpServer>> Create(ServerOptions options);
  // Stops and joins if still running.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;

  // Installs the SIGINT/SIGTERM handler (a second signal stops at once).
  // Call before announcing the server so an early signal is not lost.
  void HandleSignals();
  // Starts the io threads and returns.
  void Start();
  // Stops at once (in-flight requests are dropped; their handles abort). Thread-safe.
  void Stop();
  // Blocks until the io threads end: OK, or Fail's reason as an Internal error.
  absl::Status Wait();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kaon::http
