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
#include <random>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/api/api_error.h"
#include "server/api/chat_request.h"
#include "server/api/completion_request.h"
#include "server/api/parsed_request.h"
#include "server/api/response_builder.h"
#include "server/engine/engine.h"

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

// Closed (under its mutex) once the io threads have stopped, so an engine
// thread never posts to an io_context that is being torn down.
struct NotifyGate {
  std::mutex mu;
  bool open = true;
};

// What one in-flight generation's notify reaches; `post` is guarded by the
// gate's mutex and cleared when the connection's coroutine lets go.
struct Waker {
  std::function<void()> post;
};

// Lives on the connection's strand: set by posted wake-ups, read by the
// coroutine between drains, so a wake-up that lands while the coroutine is
// busy (writing) is not lost.
struct WaitState {
  explicit WaitState(const net::any_io_executor& ex) : timer(ex) {}
  bool pending = false;
  net::steady_timer timer;
};

std::string DumpJson(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string id = "req-";
  uint64_t v = rng();
  for (int i = 0; i < 16; ++i, v >>= 4) id += kHex[v & 15];
  return id;
}

}  // namespace

struct HttpServer::Impl {
  Impl(Engine* e, api::ServingContext c, ServerOptions o)
      : engine(e), ctx(std::move(c)), options(std::move(o)), acceptor(ioc), signals(ioc) {}

  Engine* engine;
  api::ServingContext ctx;
  ServerOptions options;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::signal_set signals;
  std::shared_ptr<NotifyGate> gate = std::make_shared<NotifyGate>();
  int64_t created = static_cast<int64_t>(std::time(nullptr));

  awaitable<void> Accept();
  awaitable<void> Session(beast::tcp_stream stream);
  // Returns whether the connection may serve another request.
  awaitable<bool> Handle(beast::tcp_stream& stream, Request& req);
  std::optional<Response> Route(const Request& req, const std::string& rid, const std::string& path,
                                std::optional<api::RequestKind>* generate) const;
  Response BodyTooLarge(const Request& req, const std::string& rid) const;
  Response BadBody(const Request& req, const std::string& rid, bool discarded) const;
  awaitable<bool> Generate(beast::tcp_stream& stream, Request& req, api::RequestKind kind, const std::string& rid);

  Response MakeJson(const Request& req, const std::string& rid, bhttp::status status, const Json& body) const;
  Response MakeError(const Request& req, const std::string& rid, const api::ApiError& error) const;
  static awaitable<bool> Send(beast::tcp_stream& stream, Response res);
};

Response HttpServer::Impl::MakeJson(const Request& req, const std::string& rid, bhttp::status status,
                                    const Json& body) const {
  Response res{status, req.version()};
  res.set(bhttp::field::server, "kaon");
  res.set(bhttp::field::content_type, "application/json");
  res.set("X-Request-Id", rid);
  res.keep_alive(req.keep_alive());
  res.body() = DumpJson(body);
  res.prepare_payload();
  return res;
}

Response HttpServer::Impl::MakeError(const Request& req, const std::string& rid, const api::ApiError& error) const {
  Response res = MakeJson(req, rid, static_cast<bhttp::status>(error.http_status), error.ToJson());
  // A full queue clears quickly; tell clients when to retry.
  if (error.http_status == 429) res.set(bhttp::field::retry_after, "1");
  return res;
}

Response HttpServer::Impl::BodyTooLarge(const Request& req, const std::string& rid) const {
  return MakeError(req, rid,
                   api::ApiError{413, "request body exceeds " + std::to_string(options.max_body_bytes) + " bytes",
                                 "invalid_request_error", std::nullopt, std::nullopt});
}

Response HttpServer::Impl::BadBody(const Request& req, const std::string& rid, bool discarded) const {
  return MakeError(req, rid,
                   api::InvalidRequest("body", discarded ? "the request body is not valid JSON (or not valid UTF-8)"
                                                         : "the request body must be a JSON object"));
}

awaitable<bool> HttpServer::Impl::Send(beast::tcp_stream& stream, Response res) {
  beast::error_code ec;
  const bool keep = res.keep_alive();
  co_await bhttp::async_write(stream, res, net::redirect_error(use_awaitable, ec));
  co_return !ec && keep;
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
    // Bounds how long a slow or idle client can hold the connection between
    // and within requests.
    stream.expires_after(options.read_timeout);
    beast::error_code ec;
    co_await bhttp::async_read(stream, buffer, parser, net::redirect_error(use_awaitable, ec));
    if (ec == bhttp::error::body_limit) {
      Request& req = parser.get();
      auto it = req.find("X-Request-Id");
      const std::string rid = it != req.end() ? std::string(it->value()) : NewRequestId();
      req.keep_alive(false);  // the rest of the body is still unread
      stream.expires_after(options.read_timeout);
      Response res = BodyTooLarge(req, rid);
      co_await Send(stream, std::move(res));
      break;
    }
    if (ec) break;  // end_of_stream, timeout, reset, or a malformed request
    stream.expires_never();
    Request req = parser.release();
    bool keep = false;
    try {
      keep = co_await Handle(stream, req);
    } catch (const std::exception&) {
      keep = false;
    }
    if (!keep) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

// Everything but generation is answered synchronously here; GCC 12
// miscompiles braced initializers with string literals inside coroutines
// ("array used as initializer"), so the coroutines only co_await results.
std::optional<Response> HttpServer::Impl::Route(const Request& req, const std::string& rid, const std::string& path,
                                                std::optional<api::RequestKind>* generate) const {
  const bhttp::verb method = req.method();
  auto wrong_method = [&](const char* allow) {
    Response res = MakeError(req, rid,
                             api::ApiError{405, "method " + std::string(req.method_string()) + " not allowed on " + path,
                                           "invalid_request_error", std::nullopt, std::nullopt});
    res.set(bhttp::field::allow, allow);
    return res;
  };
  auto model_card = [&] {
    return Json{{"id", ctx.served_model_name}, {"object", "model"},        {"created", created},
                {"owned_by", "kaon"},          {"root", ctx.served_model_name}, {"parent", nullptr},
                {"max_model_len", ctx.max_model_len}};
  };

  if (path == "/health") {
    if (method != bhttp::verb::get) return wrong_method("GET");
    return MakeJson(req, rid, bhttp::status::ok, Json{{"status", "ok"}});
  }
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
  if (path == "/v1/completions" || path == "/v1/chat/completions") {
    if (method != bhttp::verb::post) return wrong_method("POST");
    *generate = path == "/v1/completions" ? api::RequestKind::kCompletion : api::RequestKind::kChat;
    return std::nullopt;
  }
  return MakeError(req, rid, api::ApiError{404, "no route for " + path, "not_found_error", std::nullopt, std::nullopt});
}

awaitable<bool> HttpServer::Impl::Handle(beast::tcp_stream& stream, Request& req) {
  auto it = req.find("X-Request-Id");
  const std::string rid = it != req.end() && !it->value().empty() ? std::string(it->value()) : NewRequestId();
  std::string path(req.target());
  if (size_t q = path.find('?'); q != std::string::npos) path.resize(q);
  std::optional<api::RequestKind> generate;
  std::optional<Response> res = Route(req, rid, path, &generate);
  if (res.has_value()) co_return co_await Send(stream, std::move(*res));
  co_return co_await Generate(stream, req, *generate, rid);
}

awaitable<bool> HttpServer::Impl::Generate(beast::tcp_stream& stream, Request& req, api::RequestKind kind,
                                           const std::string& rid) {
  // nlohmann's lexer rejects ill-formed UTF-8 inside strings, so one check
  // covers malformed JSON and invalid UTF-8.
  Json body = Json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    Response res = BadBody(req, rid, body.is_discarded());
    co_return co_await Send(stream, std::move(res));
  }
  api::ParseResult parsed = kind == api::RequestKind::kChat ? api::ParseChatRequest(body, ctx)
                                                            : api::ParseCompletionRequest(body, ctx);
  if (auto* error = std::get_if<api::ApiError>(&parsed)) co_return co_await Send(stream, MakeError(req, rid, *error));
  const api::ParsedRequest& request = std::get<api::ParsedRequest>(parsed);

  // Dropping a handle aborts its request, so every exit below (a client gone
  // mid-stream included) cleans up the engine side.
  std::vector<std::unique_ptr<RequestHandle>> handles;
  for (size_t i = 0; i < request.prompts.size(); ++i) {
    absl::StatusOr<std::unique_ptr<RequestHandle>> h = engine->Submit(api::ToGenerationRequest(request, i));
    if (!h.ok()) co_return co_await Send(stream, MakeError(req, rid, api::ApiErrorFromStatus(h.status())));
    handles.push_back(std::move(*h));
  }

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
  // Clears the waker on every way out of this coroutine (including its
  // destruction at shutdown), so the engine stops posting for it.
  struct WakerReset {
    std::shared_ptr<NotifyGate> gate;
    std::shared_ptr<Waker> waker;
    ~WakerReset() {
      std::lock_guard<std::mutex> lock(gate->mu);
      waker->post = nullptr;
    }
  } reset{gate, waker};
  for (auto& h : handles) {
    h->SetNotify([g = gate, waker] {
      std::lock_guard<std::mutex> lock(g->mu);
      if (g->open && waker->post) waker->post();
    });
  }

  api::ResponseBuilder builder(request, *ctx.tokenizer, api::ResponseMeta::Make(kind, ctx.served_model_name));
  beast::error_code ec;

  const bool chunked = req.version() >= 11;
  if (request.stream) {
    bhttp::response<bhttp::empty_body> head{bhttp::status::ok, req.version()};
    head.set(bhttp::field::server, "kaon");
    head.set(bhttp::field::content_type, "text/event-stream");
    head.set(bhttp::field::cache_control, "no-cache");
    head.set("X-Request-Id", rid);
    // HTTP/1.0 has no chunked encoding: the stream is then delimited by
    // closing the connection.
    head.keep_alive(chunked && req.keep_alive());
    head.chunked(chunked);
    bhttp::response_serializer<bhttp::empty_body> sr{head};
    co_await bhttp::async_write_header(stream, sr, net::redirect_error(use_awaitable, ec));
    if (ec) co_return false;
  }

  // One chunked frame per SSE event: the client sees each token as soon as
  // the engine produces it.
  auto send_chunks = [&](const std::vector<std::string>& chunks) -> awaitable<bool> {
    for (const std::string& c : chunks) {
      beast::error_code wec;
      if (chunked) {
        co_await net::async_write(stream, bhttp::make_chunk(net::buffer(c)), net::redirect_error(use_awaitable, wec));
      } else {
        co_await net::async_write(stream, net::buffer(c), net::redirect_error(use_awaitable, wec));
      }
      if (wec) co_return false;
    }
    co_return true;
  };

  for (;;) {
    state->pending = false;
    bool all_done = true;
    for (size_t i = 0; i < handles.size(); ++i) {
      while (std::optional<RequestOutput> ev = handles[i]->TryNext()) {
        std::vector<std::string> chunks = builder.Add(i, *ev);
        if (request.stream && !chunks.empty() && !co_await send_chunks(chunks)) co_return false;
      }
      if (!handles[i]->done()) all_done = false;
    }
    if (all_done) break;
    if (!state->pending) {
      // The notify normally cancels this wait; the timeout only guards
      // against a lost wake-up.
      state->timer.expires_after(std::chrono::seconds(1));
      co_await state->timer.async_wait(net::redirect_error(use_awaitable, ec));
    }
  }

  if (request.stream) {
    if (!co_await send_chunks(builder.FinishStream())) co_return false;
    if (!chunked) co_return false;
    co_await net::async_write(stream, bhttp::make_chunk_last(), net::redirect_error(use_awaitable, ec));
    co_return !ec && req.keep_alive();
  }
  if (builder.error()) co_return co_await Send(stream, MakeError(req, rid, *builder.error()));
  co_return co_await Send(stream, MakeJson(req, rid, bhttp::status::ok, builder.Response()));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  Stop();
  // Run() has returned (or never ran): close the gate before the io_context
  // and the coroutine frames it holds are destroyed.
  std::lock_guard<std::mutex> lock(impl_->gate->mu);
  impl_->gate->open = false;
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(Engine* engine, api::ServingContext ctx,
                                                               ServerOptions options) {
  auto impl = std::make_unique<Impl>(engine, std::move(ctx), std::move(options));
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
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpServer::HandleSignals() {
  impl_->signals.add(SIGINT);
  impl_->signals.add(SIGTERM);
  impl_->signals.async_wait([this](const beast::error_code& ec, int) {
    if (!ec) Stop();
  });
}

void HttpServer::Run() {
  net::co_spawn(impl_->ioc, impl_->Accept(), [](std::exception_ptr) {});
  const int n = std::max(1, impl_->options.num_threads);
  std::vector<std::thread> threads;
  for (int i = 1; i < n; ++i) threads.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  for (auto& t : threads) t.join();
}

void HttpServer::Stop() {
  net::post(impl_->ioc, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->signals.cancel(ignored);
  });
  impl_->ioc.stop();
}

}  // namespace kaon::http
