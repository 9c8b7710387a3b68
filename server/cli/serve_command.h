// `kaon serve`: binds, answers /health with 503 while the model loads, then
// serves the OpenAI-compatible HTTP API (and, with --grpc-port, the gRPC
// API) until SIGINT/SIGTERM (drained) or a fatal engine error (exit 1).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>

#include "server/api/request_limits.h"
#include "server/engine/engine.h"

namespace kaon {

struct ServeFlags {
  std::string model_dir;
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: pick a free port (the announcement line carries the real one)
  // --grpc-port: unset, no gRPC listener; 0, a free port ("kaon: grpc on
  // HOST:PORT" is printed before the serving line).
  std::optional<int> grpc_port;
  std::string served_model_name;  // empty: the model directory's base name
  std::optional<std::string> chat_template_file;
  std::optional<std::string> api_key;          // unset: KAON_API_KEY from the environment, if set
  std::string allowed_origins;                 // --allowed-origins, unparsed; empty: no CORS
  size_t max_request_bytes = size_t{16} << 20;
  double shutdown_timeout_s = 30;
  double engine_step_timeout_s = 300;
  double timeout_keep_alive_s = 5;
  double request_body_timeout_s = 30;  // a body not complete by then: 408
  bool log_requests = true;
  // Bounds on one request (README, "Request limits").
  api::RequestLimits limits;
  int64_t max_render_ms = 1000;                  // chat template wall time per render
  size_t max_render_bytes = size_t{16} << 20;    // chat template output (and any string it builds)
  int api_worker_threads = 0;                    // heavy request work; 0: a quarter of the cores, at least 2
  EngineConfig engine;
};

// For in-process tests: called with the port once listening (the model is
// still loading) and once ready.
struct ServeHooks {
  std::function<void(int port)> on_listening;
  std::function<void(int port)> on_ready;
};

// Prints "kaon: serving MODEL as NAME on http://HOST:PORT" to `out` once the
// model is loaded (after "kaon: grpc on HOST:PORT" with --grpc-port);
// returns the exit code (0 after a signal, 1 on a start-up error, reported
// to `err` as one line, or after a fatal engine error).
int RunServeCommand(const ServeFlags& flags, std::ostream& out, std::ostream& err, const ServeHooks& hooks = {});

}  // namespace kaon
