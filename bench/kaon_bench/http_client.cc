#include "bench/kaon_bench/http_client.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdint>
#include <limits>
#include <stdexcept>

#include "bench/kaon_bench/sse.h"

namespace kaon::bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

double Since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

enum class Stage { kConnect, kWrite, kReadHeader, kReadBody };

// Kept out of the coroutine: string literals and temporaries in coroutine
// bodies are where GCC 12 miscompiles.
void FailTransport(RequestOutput* out, Stage stage, const beast::error_code& ec, Clock::time_point start) {
  const char* what = stage == Stage::kConnect     ? "connect"
                     : stage == Stage::kWrite      ? "send"
                     : stage == Stage::kReadHeader ? "read header"
                                                   : "read body";
  out->success = false;
  out->error = std::string(what) + ": " + ec.message();
  out->latency_s = Since(start) - out->start_s;
}

void FailStatus(RequestOutput* out, const bhttp::response<bhttp::string_body>& res, Clock::time_point start) {
  out->success = false;
  std::string body = res.body();
  if (body.size() > 300) body = body.substr(0, 300) + "...";
  out->error = "HTTP " + std::to_string(res.result_int()) + ": " + body;
  out->latency_s = Since(start) - out->start_s;
}

bhttp::request<bhttp::string_body> MakePost(const StreamCall& call) {
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, call.target, 11};
  req.set(bhttp::field::host, call.host_header);
  req.set(bhttp::field::user_agent, "kaon-bench");
  req.set(bhttp::field::content_type, "application/json");
  req.set(bhttp::field::accept, "text/event-stream");
  if (!call.api_key.empty()) req.set(bhttp::field::authorization, "Bearer " + call.api_key);
  req.body() = call.body;
  req.prepare_payload();
  return req;
}

// Feeds the body bytes that arrived since the last call; false once the
// stream is over.
bool ConsumeBody(const std::string& body, size_t* consumed, SseParser* sse, StreamAccumulator* acc, double t) {
  std::vector<std::string> events = sse->Feed(std::string_view(body).substr(*consumed));
  *consumed = body.size();
  for (const std::string& e : events) {
    if (!acc->OnEvent(e, t)) return false;
  }
  return true;
}

bool IsCleanEnd(const beast::error_code& ec) {
  return !ec || ec == bhttp::error::end_of_stream || ec == net::error::eof;
}

}  // namespace

Endpoint ParseBaseUrl(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) throw std::runtime_error("--base-url must start with http:// (got " + url + ")");
  std::string rest = url.substr(scheme.size());
  Endpoint ep;
  const size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos) ep.base_path = rest.substr(slash);
  while (!ep.base_path.empty() && ep.base_path.back() == '/') ep.base_path.pop_back();
  const size_t colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']', colon) == std::string::npos) {
    ep.host = hostport.substr(0, colon);
    ep.port = hostport.substr(colon + 1);
  } else {
    ep.host = hostport;
  }
  if (ep.host.size() > 1 && ep.host.front() == '[' && ep.host.back() == ']') ep.host = ep.host.substr(1, ep.host.size() - 2);
  if (ep.host.empty() || ep.port.empty()) throw std::runtime_error("--base-url has no host: " + url);
  return ep;
}

net::awaitable<void> StreamRequest(StreamCall call, RequestOutput* out) {
  auto ex = co_await net::this_coro::executor;
  beast::tcp_stream stream(ex);
  beast::error_code ec;
  bhttp::request<bhttp::string_body> req = MakePost(call);
  // One deadline for the whole exchange.
  stream.expires_after(std::chrono::milliseconds(static_cast<int64_t>(call.timeout_s * 1000)));
  out->start_s = Since(call.run_start);
  co_await stream.async_connect(call.endpoints, net::redirect_error(net::use_awaitable, ec));
  if (ec) {
    FailTransport(out, Stage::kConnect, ec, call.run_start);
    co_return;
  }
  co_await bhttp::async_write(stream, req, net::redirect_error(net::use_awaitable, ec));
  if (ec) {
    FailTransport(out, Stage::kWrite, ec, call.run_start);
    co_return;
  }
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  co_await bhttp::async_read_header(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
  if (ec) {
    FailTransport(out, Stage::kReadHeader, ec, call.run_start);
    co_return;
  }
  if (parser.get().result_int() != 200) {
    co_await bhttp::async_read(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
    FailStatus(out, parser.get(), call.run_start);
    co_return;
  }
  SseParser sse;
  StreamAccumulator acc(out);
  size_t consumed = 0;
  bool more = true;
  while (more && !parser.is_done()) {
    co_await bhttp::async_read_some(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
    const double t = Since(call.run_start);
    more = ConsumeBody(parser.get().body(), &consumed, &sse, &acc, t);
    if (ec) break;
  }
  if (more && !IsCleanEnd(ec)) {
    FailTransport(out, Stage::kReadBody, ec, call.run_start);
    co_return;
  }
  acc.Finish(Since(call.run_start));
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

HttpReply HttpCall(const Endpoint& ep, const std::string& method, const std::string& path, const std::string& body,
                   const std::string& api_key, double timeout_s) {
  HttpReply reply;
  try {
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    stream.connect(resolver.resolve(ep.host, ep.port));
    // Blocking reads ignore the stream's expiry; a socket timeout bounds them.
    timeval tv{static_cast<time_t>(timeout_s), 0};
    ::setsockopt(stream.socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), ep.base_path + path, 11};
    req.set(bhttp::field::host, ep.host + ":" + ep.port);
    req.set(bhttp::field::user_agent, "kaon-bench");
    if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
    if (!api_key.empty()) req.set(bhttp::field::authorization, "Bearer " + api_key);
    req.body() = body;
    req.prepare_payload();
    bhttp::write(stream, req);
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    bhttp::read(stream, buffer, parser);
    reply.status = parser.get().result_int();
    reply.body = parser.get().body();
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  } catch (const std::exception& e) {
    reply.status = 0;
    reply.error = e.what();
  }
  return reply;
}

}  // namespace kaon::bench
