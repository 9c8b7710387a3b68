// The OpenAI-compatible HTTP/1.1 front end: Boost.Beast on one io_context run
// by a few threads. Engine events reach a connection through
// RequestHandle::SetNotify, which posts to the connection's strand, so no
// thread is tied up per stream. Beast stays out of this header so that only
// http_server.cc pays its compile time.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/api/serving_context.h"

namespace kaon {
class Engine;
}

namespace kaon::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: the kernel picks a free port (see HttpServer::port)
  int num_threads = 2;
  size_t max_body_bytes = size_t{16} << 20;            // larger bodies get 413
  std::chrono::seconds read_timeout{30};               // per request: headers and body
};

class HttpServer {
 public:
  // Binds and listens, so port() is known (and connections queue) before Run.
  // Borrows engine and the context's pointers; they must outlive the server.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Create(Engine* engine, api::ServingContext ctx,
                                                            ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;

  // Installs the SIGINT/SIGTERM handler. Call before announcing the server so
  // a signal sent right after the announcement is not lost to the default
  // action.
  void HandleSignals();
  // Serves until Stop() or a handled signal; returns once the io threads end.
  void Run();
  // Thread-safe; in-flight requests are dropped (their handles abort).
  void Stop();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kaon::http
