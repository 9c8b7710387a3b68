#include "server/http/http_server.h"

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/api/api_error.h"
#include "server/api/parsed_request.h"
#include "server/api/response_builder.h"
#include "server/api/serving_state.h"
#include "server/common/memory_trimmer.h"
#include "server/common/thread_name.h"
#include "server/common/work_pool.h"
#include "server/engine/engine.h"
#include "server/http/beast_support.h"
#include "server/http/http_policy.h"
#include "server/http/request_work.h"
#include "server/metrics/request_recorder.h"
#include "server/metrics/serving_metrics.h"

namespace kaon::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using Json = nlohmann::ordered_json;
using net::awaitable;
using net::use_awaitable;
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;
using SteadyClock = std::chrono::steady_clock;

using api::ServingPhase;

std::string_view Sv(beast::string_view v) { return std::string_view(v.data(), v.size()); }

std::string DumpJson(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

api::ApiError Unavailable(const std::string& message) {
  return api::ApiError{503, message, "service_unavailable", std::nullopt, std::nullopt};
}

// The statuses llama.cpp's server and vLLM report ("ok", "loading", ...).
Json HealthBody(const api::Health& h) {
  switch (h.phase) {
    case ServingPhase::kReady: return Json{{"status", "ok"}};
    case ServingPhase::kLoading: return Json{{"status", "loading"}};
    case ServingPhase::kDraining:
    case ServingPhase::kStopped: return Json{{"status", "draining"}};
    case ServingPhase::kFailed: return Json{{"status", "error"}, {"message", h.message}};
  }
  return Json::object();
}

using beast_support::ClassifyReadError;
using beast_support::InFlight;
using beast_support::LingerClose;
using beast_support::NotifyGate;
using beast_support::OnPool;
using beast_support::PoolJobs;
using beast_support::ProtocolError;
using beast_support::ReadDeadline;
using beast_support::RequestCleanup;
using beast_support::WaitState;
using beast_support::Waker;
using beast_support::WatchDisconnect;
using beast_support::WriteEvents;

}  // namespace

struct HttpServer::Impl {
  explicit Impl(ServerOptions o) : options(std::move(o)), acceptor(ioc), signals(ioc) {}

  ServerOptions options;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::signal_set signals;
  std::shared_ptr<NotifyGate> gate = std::make_shared<NotifyGate>();
  int64_t created = static_cast<int64_t>(std::time(nullptr));
  std::vector<std::thread> threads;

  std::unique_ptr<WorkPool> own_pool;  // when options.pool is null
  WorkPool* pool = nullptr;
  PoolJobs jobs;

  std::unique_ptr<api::ServingState> own_state;  // when options.state is null
  api::ServingState* serving = nullptr;
  int listener = -1;  // serving's subscription
  std::atomic<int> in_flight{0};
  std::atomic<bool> shutting_down{false};
  mutable std::mutex mu;  // guards the request log

  // The loaded backend; only once serving->backend() is non-null (it stays
  // so through draining and failure).
  const Backend& backend() const { return *serving->backend(); }
  // What the shared state's transitions mean here (serving's listener; on
  // the transitioning thread, so it only posts and wakes).
  void OnPhase(ServingPhase phase);

  // The shutdown sequence, on an io thread: stop accepting, wait for
  // in-flight requests (at most `timeout`), stop the io_context. With a
  // `linger`, the server keeps accepting for that long (so probes see /health
  // say 503 before the process goes away).
  void BeginShutdown(std::chrono::milliseconds timeout, std::chrono::milliseconds linger = {});
  awaitable<void> DrainThenStop(SteadyClock::time_point deadline, SteadyClock::time_point linger);
  void ArmSignals();

  awaitable<void> Accept();
  awaitable<void> Session(beast::tcp_stream stream);
  // Returns whether the connection may serve another request.
  awaitable<bool> Handle(beast::tcp_stream& stream, Request& req);
  // A response for everything answered at once; nullopt and *work for routes
  // whose body must be parsed.
  std::optional<Response> Route(const Request& req, const std::string& rid, const std::string& path,
                                std::optional<Work>* work) const;
  // The heavy half (request_work.h), on the pool or, for small bodies, inline.
  Prepared Prepare(Work work, const std::string& body, SteadyClock::time_point arrival) const {
    return PrepareRequest(work, body, arrival, backend(), [this] { return NotServing(); });
  }
  awaitable<bool> Serve(beast::tcp_stream& stream, Request& req, Work work, const std::string& rid,
                        RequestLogEntry& log, SteadyClock::time_point arrival);
  Response BodyTooLarge(const Request& req, const std::string& rid) const;
  awaitable<void> AnswerProtocolError(beast::tcp_stream& stream, const Request& req, const ProtocolError& error);
  awaitable<bool> Generate(beast::tcp_stream& stream, Request& req, Prepared prepared, const std::string& rid,
                           RequestLogEntry& log);

  // Headers every response carries: server, request id, CORS.
  template <class Message>
  void Decorate(Message& m, const Request& req, const std::string& rid) const;
  Response MakeJson(const Request& req, const std::string& rid, bhttp::status status, const Json& body) const;
  Response MakeError(const Request& req, const std::string& rid, const api::ApiError& error) const;
  awaitable<bool> Send(beast::tcp_stream& stream, Response res) const;
  void Log(const RequestLogEntry& e);

  ServingPhase current() const { return serving->phase(); }
  // Why a generation cannot start now, if it cannot.
  std::optional<api::ApiError> NotServing() const;
  api::ApiError EngineFailed() const {
    return api::ApiError{500, "engine failed: " + serving->fail_reason(), "server_error", std::nullopt, std::nullopt};
  }
};

template <class Message>
void HttpServer::Impl::Decorate(Message& m, const Request& req, const std::string& rid) const {
  m.set(bhttp::field::server, "kaon");
  m.set("X-Request-Id", rid);
  if (!options.allowed_origins.empty()) {
    auto origin = req.find(bhttp::field::origin);
    if (origin != req.end()) {
      if (std::optional<std::string> allow = AllowOrigin(options.allowed_origins, Sv(origin->value()))) {
        m.set(bhttp::field::access_control_allow_origin, *allow);
        m.set(bhttp::field::access_control_expose_headers, "X-Request-Id");
        m.set(bhttp::field::vary, "Origin");
      }
    }
  }
}

Response HttpServer::Impl::MakeJson(const Request& req, const std::string& rid, bhttp::status status,
                                    const Json& body) const {
  Response res{status, req.version()};
  Decorate(res, req, rid);
  res.set(bhttp::field::content_type, "application/json");
  // While shutting down, connections close after their response.
  res.keep_alive(req.keep_alive() && !shutting_down.load());
  res.body() = DumpJson(body);
  res.prepare_payload();
  return res;
}

Response HttpServer::Impl::MakeError(const Request& req, const std::string& rid, const api::ApiError& error) const {
  Response res = MakeJson(req, rid, static_cast<bhttp::status>(error.http_status), error.ToJson());
  // A full queue clears quickly; tell clients when to retry.
  if (error.http_status == 429) res.set(bhttp::field::retry_after, "1");
  if (error.http_status == 401) res.set(bhttp::field::www_authenticate, "Bearer");
  return res;
}

Response HttpServer::Impl::BodyTooLarge(const Request& req, const std::string& rid) const {
  return MakeError(req, rid,
                   api::ApiError{413, "request body exceeds " + std::to_string(options.max_body_bytes) + " bytes",
                                 "invalid_request_error", std::nullopt, std::nullopt});
}

awaitable<bool> HttpServer::Impl::Send(beast::tcp_stream& stream, Response res) const {
  beast::error_code ec;
  const bool keep = res.keep_alive();
  stream.expires_after(options.write_timeout);
  co_await bhttp::async_write(stream, res, net::redirect_error(use_awaitable, ec));
  stream.expires_never();
  co_return !ec && keep;
}

void HttpServer::Impl::Log(const RequestLogEntry& e) {
  if (options.log == nullptr) return;
  const std::string line = FormatRequestLog(e);
  std::lock_guard<std::mutex> lock(mu);
  *options.log << line << std::endl;
}

std::optional<api::ApiError> HttpServer::Impl::NotServing() const {
  switch (current()) {
    case ServingPhase::kReady: return std::nullopt;
    case ServingPhase::kLoading: return Unavailable("the model is still loading; retry shortly");
    case ServingPhase::kDraining:
    case ServingPhase::kStopped: return Unavailable("the server is shutting down");
    case ServingPhase::kFailed: return EngineFailed();
  }
  return std::nullopt;
}

awaitable<void> HttpServer::Impl::Accept() {
  for (;;) {
    // Each connection gets its own strand, so its coroutine and the engine
    // wake-ups posted for it never run concurrently.
    tcp::socket socket(net::make_strand(ioc));
    beast::error_code ec;
    co_await acceptor.async_accept(socket, net::redirect_error(use_awaitable, ec));
    if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) continue;  // e.g. EMFILE: keep accepting the others
    net::any_io_executor ex = socket.get_executor();
    net::co_spawn(ex, Session(beast::tcp_stream(std::move(socket))), [](std::exception_ptr) {});
  }
}

awaitable<void> HttpServer::Impl::Session(beast::tcp_stream stream) {
  beast::flat_buffer buffer;
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(options.max_body_bytes);
    parser.header_limit(static_cast<std::uint32_t>(std::min<size_t>(options.max_header_bytes, UINT32_MAX)));
    // An idle connection (or one trickling its headers) is closed after the
    // keep-alive timeout; a body gets read_timeout, so a slow client cannot
    // hold a connection for long either way. The deadline cancels the read
    // rather than closing the socket (as tcp_stream's own expiry would), so
    // a client that sent part of a request still gets its 408.
    ReadDeadline deadline(stream, options.keep_alive_timeout);
    beast::error_code ec;
    co_await bhttp::async_read_header(stream, buffer, parser, net::redirect_error(use_awaitable, ec));
    if (!ec && !parser.is_done()) {
      deadline.Restart(options.read_timeout);
      co_await bhttp::async_read(stream, buffer, parser, net::redirect_error(use_awaitable, ec));
    }
    if (ec && deadline.expired()) ec = beast::error::timeout;
    deadline.Stop();
    if (ec == bhttp::error::body_limit) {
      Request& req = parser.get();
      auto it = req.find("X-Request-Id");
      const std::string rid =
          it != req.end() ? ClientRequestId(Sv(it->value())).value_or(NewRequestId()) : NewRequestId();
      req.keep_alive(false);  // the rest of the body is still unread
      Response res = BodyTooLarge(req, rid);
      RequestLogEntry log;
      log.request_id = rid;
      log.method = std::string(req.method_string());
      log.path = std::string(req.target());
      log.status = res.result_int();
      co_await Send(stream, std::move(res));
      Log(log);
      break;
    }
    if (ec) {
      if (std::optional<ProtocolError> e = ClassifyReadError(ec, parser, buffer, options.max_url_bytes)) {
        co_await AnswerProtocolError(stream, parser.get(), *e);
      }
      break;  // answered or not, this connection is done
    }
    stream.expires_never();
    Request req = parser.release();
    bool keep = false;
    try {
      InFlight guard(in_flight);
      keep = co_await Handle(stream, req);
    } catch (const std::exception&) {
      keep = false;
    }
    if (!keep) break;
  }
  co_await LingerClose(stream);
}

awaitable<void> HttpServer::Impl::AnswerProtocolError(beast::tcp_stream& stream, const Request& partial,
                                                      const ProtocolError& error) {
  // The request may be half-parsed: answer in HTTP/1.1 with what is known.
  const std::string rid = NewRequestId();
  Request req;
  req.version(11);
  if (auto o = partial.find(bhttp::field::origin); o != partial.end()) req.set(bhttp::field::origin, o->value());
  const std::string type = error.status == 408 ? "timeout_error" : "invalid_request_error";
  Response res = MakeError(req, rid, api::ApiError{error.status, error.message, type, std::nullopt, std::nullopt});
  res.keep_alive(false);
  RequestLogEntry log;
  log.request_id = rid;
  log.method = partial.method_string().empty() ? "-" : std::string(partial.method_string());
  log.path = partial.target().empty() ? "-" : std::string(partial.target().substr(0, 256));
  log.status = error.status;
  log.note = error.message;
  co_await Send(stream, std::move(res));
  Log(log);
}

// Everything but generation is answered synchronously here; GCC 12
// miscompiles braced initializers with string literals inside coroutines
// ("array used as initializer"), so the coroutines only co_await results.
std::optional<Response> HttpServer::Impl::Route(const Request& req, const std::string& rid, const std::string& path,
                                                std::optional<Work>* work) const {
  const bhttp::verb method = req.method();
  auto wrong_method = [&](const char* allow) {
    Response res = MakeError(req, rid,
                             api::ApiError{405, "method " + std::string(req.method_string()) + " not allowed on " + path,
                                           "invalid_request_error", std::nullopt, std::nullopt});
    res.set(bhttp::field::allow, allow);
    return res;
  };

  if (method == bhttp::verb::options && !options.allowed_origins.empty()) {
    // A CORS preflight: answered for any path, before authentication (the
    // browser sends no credentials with it).
    Response res{bhttp::status::no_content, req.version()};
    Decorate(res, req, rid);
    res.set(bhttp::field::access_control_allow_methods, "GET, POST, OPTIONS");
    auto asked = req.find(bhttp::field::access_control_request_headers);
    res.set(bhttp::field::access_control_allow_headers,
            asked != req.end() ? std::string(asked->value()) : "Authorization, Content-Type, X-Request-Id");
    res.set(bhttp::field::access_control_max_age, "600");
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
  }
  if (options.api_key && PathNeedsApiKey(path)) {
    auto auth = req.find(bhttp::field::authorization);
    if (auth == req.end() || !BearerMatches(Sv(auth->value()), *options.api_key)) {
      return MakeError(req, rid,
                       api::ApiError{401, "a valid API key is required: send it as Authorization: Bearer KEY",
                                     "invalid_request_error", std::nullopt, "invalid_api_key"});
    }
  }

  const bool ready = serving->backend() != nullptr;
  if (path == "/health") {
    if (method != bhttp::verb::get) return wrong_method("GET");
    const api::Health h = serving->health();
    return MakeJson(req, rid, h.serving ? bhttp::status::ok : bhttp::status::service_unavailable, HealthBody(h));
  }
  if (path == "/version") {
    if (method != bhttp::verb::get) return wrong_method("GET");
    return MakeJson(req, rid, bhttp::status::ok, Json{{"version", KAON_VERSION}});
  }
  if (path == "/metrics") {
    if (method != bhttp::verb::get) return wrong_method("GET");
    if (!ready) return MakeError(req, rid, Unavailable("the model is still loading"));
    Response res{bhttp::status::ok, req.version()};
    Decorate(res, req, rid);
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.keep_alive(req.keep_alive() && !shutting_down.load());
    res.body() = backend().metrics->Render(backend().engine->stats());
    res.prepare_payload();
    return res;
  }
  const bool known = path == "/v1/models" || path.rfind("/v1/models/", 0) == 0 || path == "/v1/completions" ||
                     path == "/v1/chat/completions" || path == "/tokenize" || path == "/detokenize";
  if (!known) {
    return MakeError(req, rid, api::ApiError{404, "no route for " + path, "not_found_error", std::nullopt, std::nullopt});
  }
  if (!ready) return MakeError(req, rid, Unavailable("the model is still loading; retry shortly"));
  const api::ServingContext& ctx = backend().ctx;
  auto model_card = [&] {
    return Json{{"id", ctx.served_model_name}, {"object", "model"},        {"created", created},
                {"owned_by", "kaon"},          {"root", ctx.served_model_name}, {"parent", nullptr},
                {"max_model_len", ctx.max_model_len}};
  };
  if (path == "/v1/models") {
    if (method != bhttp::verb::get) return wrong_method("GET");
    return MakeJson(req, rid, bhttp::status::ok, Json{{"object", "list"}, {"data", Json::array({model_card()})}});
  }
  if (path.rfind("/v1/models/", 0) == 0) {
    if (method != bhttp::verb::get) return wrong_method("GET");
    if (path.substr(11) == ctx.served_model_name) return MakeJson(req, rid, bhttp::status::ok, model_card());
    return MakeError(req, rid,
                     api::ApiError{404, "The model `" + path.substr(11) + "` does not exist.", "NotFoundError",
                                   std::nullopt, "model_not_found"});
  }
  if (method != bhttp::verb::post) return wrong_method("POST");
  // Beast reads a request without either header as having no body; a POST
  // route needs one, so say which header is missing.
  if (!req.has_content_length() && !req.chunked()) {
    return MakeError(req, rid,
                     api::ApiError{411, "a request body is required: send Content-Length (or chunked encoding)",
                                   "invalid_request_error", std::nullopt, std::nullopt});
  }
  if (path == "/tokenize") *work = Work::kTokenize;
  else if (path == "/detokenize") *work = Work::kDetokenize;
  else if (path == "/v1/completions") *work = Work::kCompletion;
  else *work = Work::kChat;
  return std::nullopt;
}

awaitable<bool> HttpServer::Impl::Handle(beast::tcp_stream& stream, Request& req) {
  const SteadyClock::time_point start = SteadyClock::now();
  auto it = req.find("X-Request-Id");
  // Repeated in a header and the log only when it is safe to.
  const std::string rid =
      it != req.end() ? ClientRequestId(Sv(it->value())).value_or(NewRequestId()) : NewRequestId();
  std::string path(req.target());
  if (size_t q = path.find('?'); q != std::string::npos) path.resize(q);
  RequestLogEntry log;
  log.request_id = rid;
  log.method = std::string(req.method_string());
  log.path = path.substr(0, 256);
  std::optional<Work> work;
  std::optional<Response> res;
  if (req.version() != 10 && req.version() != 11) {
    // Beast parses any HTTP/x.y; only 1.0 and 1.1 are spoken here.
    res = MakeError(req, rid,
                    api::ApiError{505, "only HTTP/1.0 and HTTP/1.1 are supported", "invalid_request_error",
                                  std::nullopt, std::nullopt});
    res->version(11);
  } else if (req.target().size() > options.max_url_bytes) {
    res = MakeError(req, rid,
                    api::ApiError{414,
                                  "the request URL is longer than " + std::to_string(options.max_url_bytes) + " bytes",
                                  "invalid_request_error", std::nullopt, std::nullopt});
  } else {
    res = Route(req, rid, path, &work);
  }
  // After a protocol error what follows on the connection cannot be
  // trusted (a 411's body has no length): answer, then close.
  if (res && (res->result_int() == 505 || res->result_int() == 414 || res->result_int() == 411)) {
    res->keep_alive(false);
  }
  bool keep = false;
  if (res.has_value()) {
    log.status = res->result_int();
    keep = co_await Send(stream, std::move(*res));
  } else {
    keep = co_await Serve(stream, req, *work, rid, log, start);
  }
  log.total_seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  // Probes would drown the log; their failures still show.
  const bool probe = path == "/health" || path == "/metrics";
  if (!probe || log.status != 200) Log(log);
  co_return keep;
}

awaitable<bool> HttpServer::Impl::Serve(beast::tcp_stream& stream, Request& req, Work work, const std::string& rid,
                                        RequestLogEntry& log, SteadyClock::time_point arrival) {
  // Small bodies that render no template cost microseconds: handled here,
  // they never queue behind heavy work. The rest goes to the pool.
  std::optional<Prepared> prepared;
  if (work != Work::kChat && req.body().size() <= options.inline_body_bytes) {
    prepared = Prepare(work, req.body(), arrival);
  } else {
    prepared = co_await OnPool<Prepared>(*pool, jobs, [this, work, &req, arrival] {
      return Prepare(work, req.body(), arrival);
    });
  }
  if (!prepared) {
    const api::ApiError busy{429, "the server is busy parsing other requests; retry shortly", "server_busy_error",
                             std::nullopt, std::nullopt};
    log.status = busy.http_status;
    co_return co_await Send(stream, MakeError(req, rid, busy));
  }
  // The body is no longer needed; a 16 MB one should not live as long as
  // the generation does, nor the heap it was parsed on.
  const bool large = req.body().size() >= api::kLargeRequestBytes;
  std::string().swap(req.body());
  if (large && backend().trimmer != nullptr) backend().trimmer->Request();
  if (prepared->error) {
    log.status = prepared->error->http_status;
    co_return co_await Send(stream, MakeError(req, rid, *prepared->error));
  }
  if (work == Work::kTokenize || work == Work::kDetokenize) {
    log.status = 200;
    Response res{bhttp::status::ok, req.version()};
    Decorate(res, req, rid);
    res.set(bhttp::field::content_type, "application/json");
    res.keep_alive(req.keep_alive() && !shutting_down.load());
    res.body() = std::move(prepared->body);
    res.prepare_payload();
    co_return co_await Send(stream, std::move(res));
  }
  co_return co_await Generate(stream, req, std::move(*prepared), rid, log);
}

awaitable<bool> HttpServer::Impl::Generate(beast::tcp_stream& stream, Request& req, Prepared prepared,
                                           const std::string& rid, RequestLogEntry& log) {
  const api::ServingContext& ctx = backend().ctx;
  const api::ParsedRequest& request = *prepared.request;
  const api::RequestKind kind = request.kind;
  // Dropping a handle aborts its request, so every exit below (a client gone
  // mid-stream included) cleans up the engine side; a recorder dropped
  // unfinished counts its choices as aborted.
  std::vector<std::unique_ptr<RequestHandle>>& handles = prepared.handles;
  std::vector<std::unique_ptr<metrics::RequestRecorder>>& recorders = prepared.recorders;
  auto fill_log = [&] {
    log.prompt_tokens = 0;
    log.output_tokens = 0;
    for (const auto& r : recorders) {
      log.prompt_tokens += r->prompt_tokens();
      log.output_tokens += r->generation_tokens();
      if (auto t = r->ttft_seconds(); t && (!log.ttft_seconds || *t < *log.ttft_seconds)) log.ttft_seconds = t;
    }
  };

  const net::any_io_executor ex = co_await net::this_coro::executor;
  auto state = std::make_shared<WaitState>(ex);
  auto waker = std::make_shared<Waker>();
  waker->post = [ex, weak = std::weak_ptr<WaitState>(state)] {
    net::post(ex, [weak] {
      if (auto s = weak.lock()) {
        s->pending = true;
        s->timer.cancel();
      }
    });
  };
  RequestCleanup cleanup{gate, waker, state, &stream.socket()};
  {
    std::lock_guard<std::mutex> lock(gate->mu);
    gate->wakers.insert(waker.get());
  }
  for (auto& h : handles) {
    h->SetNotify([g = gate, waker] {
      std::lock_guard<std::mutex> lock(g->mu);
      if (g->open && waker->post) waker->post();
    });
  }
  net::co_spawn(ex, WatchDisconnect(stream.socket(), state), [](std::exception_ptr) {});

  api::ResponseBuilder builder(request, *ctx.tokenizer, api::ResponseMeta::Make(kind, ctx.served_model_name));
  beast::error_code ec;
  log.status = 200;

  const bool chunked = req.version() >= 11;
  if (request.stream) {
    bhttp::response<bhttp::empty_body> head{bhttp::status::ok, req.version()};
    Decorate(head, req, rid);
    head.set(bhttp::field::content_type, "text/event-stream");
    head.set(bhttp::field::cache_control, "no-cache");
    // HTTP/1.0 has no chunked encoding: the stream is then delimited by
    // closing the connection.
    head.keep_alive(chunked && req.keep_alive());
    head.chunked(chunked);
    bhttp::response_serializer<bhttp::empty_body> sr{head};
    stream.expires_after(options.write_timeout);
    co_await bhttp::async_write_header(stream, sr, net::redirect_error(use_awaitable, ec));
    stream.expires_never();
    if (ec) {
      log.note = "client disconnected";
      co_return false;
    }
  }

  // One chunked frame per SSE event: the client sees each token as soon as
  // the engine produces it. A client that stops reading for write_timeout
  // is dropped (its request aborts).
  auto send_chunks = [&](const std::vector<std::string>& chunks, bool last = false) {
    return WriteEvents(stream, chunks, chunked, last, options.write_timeout);
  };

  bool failed = false;
  for (;;) {
    state->pending = false;
    bool all_done = true;
    for (size_t i = 0; i < handles.size(); ++i) {
      while (std::optional<RequestOutput> ev = handles[i]->TryNext()) {
        recorders[i]->Observe(*ev);
        std::vector<std::string> chunks = builder.Add(i, *ev);
        if (request.stream && !chunks.empty() && !co_await send_chunks(chunks)) {
          fill_log();
          log.note = "client disconnected";
          co_return false;
        }
      }
      if (!handles[i]->done()) all_done = false;
    }
    if (all_done) break;
    if (state->client_gone) {
      fill_log();
      log.note = "client disconnected";
      co_return false;
    }
    if (current() == ServingPhase::kFailed) {
      failed = true;
      break;
    }
    if (!state->pending) {
      // The notify normally cancels this wait; the timeout only guards
      // against a lost wake-up.
      state->timer.expires_after(std::chrono::seconds(1));
      co_await state->timer.async_wait(net::redirect_error(use_awaitable, ec));
    }
  }
  fill_log();

  if (failed) {
    // The engine is stuck or broken: end the request with a 500 rather than
    // leave the client waiting on a process that is about to exit.
    const api::ApiError e = EngineFailed();
    log.status = 500;
    log.note = "engine failed";
    if (!request.stream) co_return co_await Send(stream, MakeError(req, rid, e));
    std::vector<std::string> tail;
    tail.push_back(api::SseEvent(e.ToJson()));
    tail.push_back(api::kSseDone);
    co_await send_chunks(tail, /*last=*/true);
    co_return false;
  }
  if (request.stream) {
    if (builder.error()) log.note = "step failed: " + builder.error()->message;
    if (!co_await send_chunks(builder.FinishStream(), /*last=*/true)) co_return false;
    co_return chunked && req.keep_alive() && !shutting_down.load();
  }
  if (builder.error()) {
    log.status = builder.error()->http_status;
    co_return co_await Send(stream, MakeError(req, rid, *builder.error()));
  }
  co_return co_await Send(stream, MakeJson(req, rid, bhttp::status::ok, builder.Response()));
}

void HttpServer::Impl::BeginShutdown(std::chrono::milliseconds timeout, std::chrono::milliseconds linger) {
  if (shutting_down.exchange(true)) return;
  if (linger.count() == 0) {
    beast::error_code ignored;
    acceptor.close(ignored);
  }
  const SteadyClock::time_point now = SteadyClock::now();
  net::co_spawn(ioc, DrainThenStop(now + timeout, now + linger), [](std::exception_ptr) {});
}

awaitable<void> HttpServer::Impl::DrainThenStop(SteadyClock::time_point deadline, SteadyClock::time_point linger) {
  net::steady_timer timer(ioc);
  beast::error_code ec;
  while ((in_flight.load() > 0 || SteadyClock::now() < linger) && SteadyClock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(20));
    co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
  }
  ioc.stop();
}

void HttpServer::Impl::ArmSignals() {
  signals.async_wait([this](const beast::error_code& ec, int) {
    if (ec) return;
    if (shutting_down.load()) {
      // A second signal: the operator does not want to wait.
      ioc.stop();
      return;
    }
    // Every front end drains from here (OnPhase); a server that has
    // already failed is shutting down on its own.
    serving->BeginDrain();
    ArmSignals();
  });
}

void HttpServer::Impl::OnPhase(ServingPhase phase) {
  if (phase == ServingPhase::kDraining) {
    net::post(ioc, [this] { BeginShutdown(options.shutdown_timeout); });
  } else if (phase == ServingPhase::kFailed) {
    {
      // Every waiting request wakes, sees the failure and answers 500.
      std::lock_guard<std::mutex> lock(gate->mu);
      if (gate->open) {
        for (Waker* w : gate->wakers) {
          if (w->post) w->post();
        }
      }
    }
    // /health keeps answering "error" for a moment before the process goes.
    net::post(ioc, [this] { BeginShutdown(std::chrono::seconds(3), std::chrono::seconds(1)); });
  }
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  impl_->serving->Unsubscribe(impl_->listener);
  Stop();
  Wait().IgnoreError();
  // Pool tasks post their results to the io_context: let them finish first
  // (each is bounded by the parse limits and the render budget).
  impl_->jobs.WaitIdle();
  // The io threads have ended: close the gate before the io_context and the
  // coroutine frames it holds are destroyed.
  std::lock_guard<std::mutex> lock(impl_->gate->mu);
  impl_->gate->open = false;
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(ServerOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  impl->pool = impl->options.pool;
  if (impl->pool == nullptr) {
    impl->own_pool = std::make_unique<WorkPool>(WorkPoolOptions{});
    impl->pool = impl->own_pool.get();
  }
  impl->serving = impl->options.state;
  if (impl->serving == nullptr) {
    impl->own_state = std::make_unique<api::ServingState>();
    impl->serving = impl->own_state.get();
  }
  beast::error_code ec;
  const net::ip::address address = net::ip::make_address(impl->options.host, ec);
  if (ec) return absl::InvalidArgumentError("--host: not an IP address: " + impl->options.host);
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(impl->options.port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError("cannot listen on " + impl->options.host + ":" +
                                  std::to_string(impl->options.port) + ": " + ec.message());
  }
  Impl* raw = impl.get();
  impl->listener = impl->serving->Subscribe([raw](ServingPhase phase) { raw->OnPhase(phase); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpServer::HandleSignals() {
  impl_->signals.add(SIGINT);
  impl_->signals.add(SIGTERM);
  impl_->ArmSignals();
}

void HttpServer::Start() {
  net::co_spawn(impl_->ioc, impl_->Accept(), [](std::exception_ptr) {});
  const int n = std::max(1, impl_->options.num_threads);
  for (int i = 0; i < n; ++i) {
    impl_->threads.emplace_back([this] {
      SetCurrentThreadName("kaon-http");
      impl_->ioc.run();
    });
  }
}

void HttpServer::Stop() {
  net::post(impl_->ioc, [impl = impl_.get()] {
    impl->shutting_down.store(true);
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->signals.cancel(ignored);
  });
  impl_->ioc.stop();
}

absl::Status HttpServer::Wait() {
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  impl_->threads.clear();
  if (impl_->current() == ServingPhase::kFailed) return absl::InternalError(impl_->serving->fail_reason());
  return absl::OkStatus();
}

}  // namespace kaon::http
