#include "server/cli/serve_command.h"

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <ostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "server/api/request_rules.h"
#include "server/api/serving_context.h"
#include "server/api/serving_state.h"
#include "server/common/memory_trimmer.h"
#include "server/common/work_pool.h"
#include "server/engine/engine_watchdog.h"
#include "server/grpc/grpc_server.h"
#include "server/http/http_policy.h"
#include "server/http/http_server.h"
#include "server/metrics/serving_metrics.h"
#include "server/template/chat_template.h"
#include "server/template/limits.h"

namespace kaon {

namespace {

// "models/stories260k/" and "models/stories260k" both name "stories260k".
std::string BaseName(const std::string& dir) {
  std::filesystem::path p(dir);
  if (!p.has_filename()) p = p.parent_path();
  return p.filename().string();
}

// Every open stream is a socket; the default soft limit (often 1024) would
// refuse connections long before the engine is busy.
void RaiseOpenFileLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

std::chrono::seconds WholeSeconds(double s) { return std::chrono::seconds(static_cast<int64_t>(std::ceil(s))); }

absl::StatusOr<http::ServerOptions> MakeServerOptions(const ServeFlags& flags, std::ostream& log) {
  http::ServerOptions o;
  o.host = flags.host;
  o.port = flags.port;
  o.max_body_bytes = flags.max_request_bytes;
  if (flags.max_request_bytes == 0) return absl::InvalidArgumentError("--max-request-bytes must be positive");
  if (!(flags.shutdown_timeout_s >= 0)) return absl::InvalidArgumentError("--shutdown-timeout must be >= 0");
  if (!(flags.engine_step_timeout_s > 0)) return absl::InvalidArgumentError("--engine-step-timeout must be > 0");
  if (!(flags.timeout_keep_alive_s > 0)) return absl::InvalidArgumentError("--timeout-keep-alive must be > 0");
  o.shutdown_timeout = WholeSeconds(flags.shutdown_timeout_s);
  o.keep_alive_timeout = WholeSeconds(flags.timeout_keep_alive_s);
  if (!(flags.request_body_timeout_s > 0)) return absl::InvalidArgumentError("--request-body-timeout must be > 0");
  o.read_timeout = WholeSeconds(flags.request_body_timeout_s);
  o.api_key = flags.api_key;
  if (!o.api_key) {
    if (const char* env = std::getenv("KAON_API_KEY"); env != nullptr) o.api_key = std::string(env);
  }
  if (o.api_key && o.api_key->empty()) {
    return absl::InvalidArgumentError("--api-key (or KAON_API_KEY) must not be empty");
  }
  if (!flags.allowed_origins.empty()) {
    absl::StatusOr<std::vector<std::string>> origins = http::ParseAllowedOrigins(flags.allowed_origins);
    if (!origins.ok()) return origins.status();
    o.allowed_origins = std::move(*origins);
  }
  if (flags.log_requests) o.log = &log;
  return o;
}

}  // namespace

int RunServeCommand(const ServeFlags& flags, std::ostream& out, std::ostream& err, const ServeHooks& hooks) {
  absl::StatusOr<http::ServerOptions> options = MakeServerOptions(flags, err);
  if (!options.ok()) {
    err << "kaon serve: " << options.status().message() << "\n";
    return 1;
  }
  RaiseOpenFileLimit();
  // Shared by both front ends; declared first so that it outlives them (each
  // waits for its own tasks before it goes).
  WorkPoolOptions pool_options;
  pool_options.num_threads = flags.api_worker_threads > 0
                                 ? flags.api_worker_threads
                                 : std::max(2, static_cast<int>(std::thread::hardware_concurrency() / 4));
  WorkPool pool(pool_options);
  options->pool = &pool;
  MemoryTrimmer::ConfigureAllocator();
  MemoryTrimmer trimmer;
  // Loading → ready → draining → stopped (or failed), for both front ends and
  // their health endpoints: a signal, the watchdog and this function each
  // make a transition here once, and every front end follows it.
  api::ServingState state;
  options->state = &state;

  // Declared before the server so they outlive it: its connections hold
  // engine request handles and borrow the rest.
  std::unique_ptr<Engine> engine;
  std::unique_ptr<ChatTemplate> chat_template;
  std::unique_ptr<metrics::ServingMetrics> serving_metrics;

  // Both front ends listen first: while a large model loads, /health
  // answers 503 "loading" (gRPC health NOT_SERVING) instead of refusing
  // connections. The gRPC server is declared after the engine so that it
  // (with its calls' request handles) goes first.
  std::unique_ptr<grpc_api::GrpcServer> grpc;
  if (flags.grpc_port) {
    grpc_api::GrpcOptions go;
    go.host = flags.host;
    go.port = *flags.grpc_port;
    go.api_key = options->api_key;
    go.max_message_bytes = flags.max_request_bytes;
    go.pool = &pool;
    go.state = &state;
    absl::StatusOr<std::unique_ptr<grpc_api::GrpcServer>> created = grpc_api::GrpcServer::Create(go);
    if (!created.ok()) {
      err << "kaon serve: " << created.status().message() << "\n";
      return 1;
    }
    grpc = std::move(*created);
  }
  absl::StatusOr<std::unique_ptr<http::HttpServer>> server = http::HttpServer::Create(*options);
  if (!server.ok()) {
    err << "kaon serve: " << server.status().message() << "\n";
    return 1;
  }
  (*server)->HandleSignals();
  (*server)->Start();
  out << "kaon: loading " << flags.model_dir << " (http://" << flags.host << ":" << (*server)->port()
      << "/health answers 503 until ready)" << std::endl;
  if (hooks.on_listening) hooks.on_listening((*server)->port());

  absl::StatusOr<std::unique_ptr<Engine>> created = Engine::Create(flags.model_dir, flags.engine);
  if (!created.ok()) {
    err << "kaon serve: " << created.status().message() << "\n";
    return 1;
  }
  engine = std::move(*created);
  if (absl::Status s = api::CheckGenerationDefaults(engine->info().generation, engine->info().config.vocab_size,
                                                    flags.model_dir);
      !s.ok()) {
    err << "kaon serve: " << s.message() << "\n";
    return 1;
  }
  out << "kaon: device " << engine->device_summary() << std::endl;
  if (!engine->memory_summary().empty()) out << "kaon: " << engine->memory_summary() << std::endl;

  // A model without a template still serves completions; chat requests then
  // get a 400 naming --chat-template. An explicit file must load, though.
  absl::StatusOr<std::unique_ptr<ChatTemplate>> loaded = ChatTemplate::FromModelDir(flags.model_dir, flags.chat_template_file);
  if (loaded.ok()) {
    chat_template = std::move(*loaded);
    jinja::Limits limits;
    limits.max_render_time = std::chrono::milliseconds(flags.max_render_ms);
    limits.max_output_bytes = flags.max_render_bytes;
    chat_template->SetLimits(limits);
  } else if (flags.chat_template_file.has_value() || !absl::IsNotFound(loaded.status())) {
    err << "kaon serve: " << loaded.status().message() << "\n";
    return 1;
  }

  api::ServingBackend backend;
  backend.engine = engine.get();
  backend.ctx.served_model_name = flags.served_model_name.empty() ? BaseName(flags.model_dir) : flags.served_model_name;
  backend.ctx.tokenizer = &engine->tokenizer();
  backend.ctx.chat_template = chat_template.get();
  backend.ctx.max_model_len = engine->max_model_len();
  backend.ctx.vocab_size = engine->info().config.vocab_size;
  backend.ctx.limits = flags.limits;
  backend.ctx.generation = engine->info().generation;
  backend.trimmer = &trimmer;
  serving_metrics = std::make_unique<metrics::ServingMetrics>(metrics::MetricsInfo{
      backend.ctx.served_model_name, engine->block_size(), engine->num_kv_blocks(), engine->max_model_len()});
  backend.metrics = serving_metrics.get();
  const std::string name = backend.ctx.served_model_name;
  // A signal during loading: nothing was accepted that needs serving.
  if (!state.SetBackend(std::move(backend))) return 0;
  if (grpc) out << "kaon: grpc on " << flags.host << ":" << grpc->port() << std::endl;
  out << "kaon: serving " << flags.model_dir << " as " << name << " on http://" << flags.host << ":"
      << (*server)->port() << std::endl;
  if (hooks.on_ready) hooks.on_ready((*server)->port());

  absl::Status status;
  {
    std::unique_ptr<EngineWatchdog> watchdog = EngineWatchdog::ForEngine(
        engine.get(), flags.engine_step_timeout_s, [&state](const std::string& reason) { state.Fail(reason); });
    status = (*server)->Wait();
  }
  if (grpc) {
    // HTTP has drained (or failed): gRPC calls get what is left of the
    // shutdown timeout, counted from when the drain began.
    using SysClock = std::chrono::system_clock;
    const std::optional<SysClock::time_point> began = state.drain_started();
    const SysClock::time_point deadline = began ? *began + WholeSeconds(flags.shutdown_timeout_s) : SysClock::now();
    grpc->Shutdown(status.ok() ? deadline : SysClock::now());
  }
  state.MarkStopped();
  if (status.ok()) return 0;
  err << "kaon serve: fatal: " << status.message() << "\n";
  // The engine thread may be stuck inside a step and cannot be joined: drop the
  // server (its handles abort), then leave the engine to the process exit.
  server->reset();
  static_cast<void>(engine.release());
  return 1;
}

}  // namespace kaon
