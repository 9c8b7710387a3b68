// Pieces of the HTTP server that need Asio/Beast but not the server's
// state: answering read errors, read deadlines that cancel instead of
// closing, and awaiting work on the worker pool. Included only by
// http_server.cc, so Beast's compile time is paid once.
#pragma once

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "server/common/work_pool.h"

namespace kaon::http::beast_support {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using net::awaitable;
using net::use_awaitable;

// A protocol error found while reading a request: answered, then the
// connection closes (the rest of what the client sends cannot be trusted).
struct ProtocolError {
  int status;
  std::string message;
};

// Pool tasks still running: each posts its result back to the io_context,
// so the server waits for them before that goes away.
struct PoolJobs {
  std::mutex mu;
  std::condition_variable cv;
  int running = 0;
  void Begin() {
    std::lock_guard<std::mutex> lock(mu);
    ++running;
  }
  void End() {
    std::lock_guard<std::mutex> lock(mu);
    if (--running == 0) cv.notify_all();
  }
  void WaitIdle() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return running == 0; });
  }
};

// Runs `fn` on `pool` and resumes the calling coroutine on its own executor
// (its connection's strand) with the result; nullopt when the pool's queue
// is full.
template <class T>
awaitable<std::optional<T>> OnPool(WorkPool& pool, PoolJobs& jobs, std::function<T()> fn) {
  auto initiate = [&pool, &jobs](auto handler, std::function<T()> task) {
    net::any_io_executor ex = net::get_associated_executor(handler);
    // The coroutine's handler is move-only; std::function needs a copy.
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    jobs.Begin();
    const bool queued = pool.TryPost([h, ex, task = std::move(task), &jobs]() mutable {
      // The coroutine must be resumed whatever happens: a handler dropped
      // unrun would destroy its frame on this thread.
      std::optional<T> result;
      try {
        result = task();
      } catch (...) {
      }
      net::post(ex, [h = std::move(h), result = std::move(result)]() mutable { (*h)(std::move(result)); });
      // Drop what this job holds of the server (its strand, through the
      // executor; the task's captures) before End: once the last job ends,
      // the server may destroy its io_context, and a strand released after
      // that locks a destroyed mutex (found by TSan in build-tsan).
      ex = net::any_io_executor();
      task = nullptr;
      jobs.End();
    });
    if (!queued) {
      jobs.End();
      net::post(ex, [h]() mutable { (*h)(std::nullopt); });
    }
  };
  co_return co_await net::async_initiate<decltype(use_awaitable), void(std::optional<T>)>(initiate, use_awaitable,
                                                                                         std::move(fn));
}

// A read deadline that cancels the socket's pending read when it passes.
// Lives on the connection's strand with the read it guards.
class ReadDeadline {
 public:
  ReadDeadline(beast::tcp_stream& stream, std::chrono::seconds timeout)
      : stream_(stream), timer_(stream.get_executor()) {
    Restart(timeout);
  }
  ~ReadDeadline() { Stop(); }
  void Restart(std::chrono::seconds timeout) {
    timer_.expires_after(timeout);
    // The flag is shared: a wait cancelled by Stop may complete after this
    // object is gone.
    timer_.async_wait([expired = expired_, socket = &stream_.socket()](const beast::error_code& ec) {
      if (ec) return;  // restarted or stopped
      *expired = true;
      beast::error_code ignored;
      socket->cancel(ignored);
    });
  }
  void Stop() { timer_.cancel(); }
  bool expired() const { return *expired_; }

 private:
  beast::tcp_stream& stream_;
  net::steady_timer timer_;
  std::shared_ptr<bool> expired_ = std::make_shared<bool>(false);
};

// The answer to a read error, if the peer is there to read one: nothing for
// a clean close, a reset or an idle keep-alive connection timing out.
inline std::optional<ProtocolError> ClassifyReadError(const beast::error_code& ec,
                                               const bhttp::request_parser<bhttp::string_body>& parser,
                                               const beast::flat_buffer& buffer, size_t max_url_bytes) {
  if (ec == beast::error::timeout) {
    if (!parser.got_some() && buffer.size() == 0) return std::nullopt;
    return ProtocolError{408, parser.is_header_done() ? "the request body did not arrive in time"
                                                      : "the request headers did not arrive in time"};
  }
  if (ec == bhttp::error::partial_message) return ProtocolError{400, "the request ended before it was complete"};
  if (ec == bhttp::error::header_limit) {
    // The request line alone too long is a long URL (414); else the headers (431).
    const auto* data = static_cast<const char*>(buffer.data().data());
    const std::string_view seen(data, buffer.size());
    const size_t eol = seen.find('\n');
    if (eol == std::string_view::npos || eol > max_url_bytes + 16) {
      return ProtocolError{414, "the request URL is too long"};
    }
    return ProtocolError{431, "the request headers are too large"};
  }
  if (ec == bhttp::error::end_of_stream) return std::nullopt;
  if (ec == bhttp::error::bad_version) return ProtocolError{505, "only HTTP/1.0 and HTTP/1.1 are supported"};
  if (ec == bhttp::error::bad_target && !parser.is_header_done()) {
    // HTTP/0.9's "GET /path" has no version: the target runs into the line's
    // end. A version problem, not a malformed target.
    const std::string_view seen(static_cast<const char*>(buffer.data().data()), buffer.size());
    const std::string_view line = seen.substr(0, seen.find_first_of("\r\n"));
    const size_t first = line.find(' ');
    if (first != std::string_view::npos && first > 0 && line.find(' ', first + 1) == std::string_view::npos &&
        seen.find('\n') != std::string_view::npos) {
      return ProtocolError{505, "only HTTP/1.0 and HTTP/1.1 are supported (this looks like HTTP/0.9)"};
    }
  }
  if (ec.category() == beast::error_code(bhttp::error::bad_method).category()) {
    // Every other parser error: a malformed request line, header, length or chunk.
    return ProtocolError{400, "malformed HTTP request: " + ec.message()};
  }
  return std::nullopt;  // end_of_stream, reset, ...: nobody to answer
}

// What one in-flight generation's notify reaches; `post` is guarded by the
// gate's mutex and cleared when the connection's coroutine lets go.
struct Waker {
  std::function<void()> post;
};

// Closed (under its mutex) once the io threads have stopped, so an engine
// thread never posts to an io_context that is being torn down. Also lists
// the live wakers, so a fatal error can wake every waiting request.
struct NotifyGate {
  std::mutex mu;
  bool open = true;
  std::unordered_set<Waker*> wakers;
};

// Lives on the connection's strand: set by posted wake-ups, read by the
// coroutine between drains, so a wake-up that lands while the coroutine is
// busy (writing) is not lost.
struct WaitState {
  explicit WaitState(const net::any_io_executor& ex) : timer(ex) {}
  bool pending = false;
  bool client_gone = false;
  // Set when the request's coroutine lets go: the socket may be gone by the
  // time a disconnect watcher's completed wait resumes.
  bool finished = false;
  net::steady_timer timer;
};

// Holds the in-flight count up while a request is being handled, so a drain
// waits for it.
struct InFlight {
  explicit InFlight(std::atomic<int>& c) : count(c) { count.fetch_add(1); }
  ~InFlight() { count.fetch_sub(1); }
  std::atomic<int>& count;
};

// Ends a request whose client went away (a zero-byte peek while nothing
// more was asked for) by setting `state->client_gone`.
inline awaitable<void> WatchDisconnect(net::ip::tcp::socket& socket, std::shared_ptr<WaitState> state) {
  beast::error_code ec;
  co_await socket.async_wait(net::ip::tcp::socket::wait_read, net::redirect_error(use_awaitable, ec));
  // Cancelled, or completed just as the request finished: in both cases the
  // socket must not be touched (the session may have closed it). Both run on
  // the connection's strand, so the flag is exact.
  if (ec || state->finished) co_return;
  // Readable while we have not asked for more: either the peer closed (a
  // zero-byte peek) or it pipelined its next request (leave that alone).
  char byte;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    state->client_gone = true;
    state->timer.cancel();
  }
}

// Half-closes, then reads what the client still sends for a moment: closing
// a socket with unread data resets it, and the reset can destroy an error
// response (413, 400) before the client has read it.
inline awaitable<void> LingerClose(beast::tcp_stream& stream) {
  beast::error_code ignored;
  stream.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  stream.expires_after(std::chrono::seconds(2));
  char sink[4096];
  for (size_t drained = 0; drained < (size_t{4} << 20);) {
    beast::error_code ec;
    const size_t n = co_await stream.async_read_some(net::buffer(sink), net::redirect_error(use_awaitable, ec));
    if (ec) break;
    drained += n;
  }
}

// Clears a request's waker on every way out of its coroutine (including its
// destruction at shutdown), so the engine stops posting for it, and stops
// watching the socket for a disconnect.
struct RequestCleanup {
  std::shared_ptr<NotifyGate> gate;
  std::shared_ptr<Waker> waker;
  std::shared_ptr<WaitState> state;
  net::ip::tcp::socket* socket;
  ~RequestCleanup() {
    {
      std::lock_guard<std::mutex> lock(gate->mu);
      waker->post = nullptr;
      gate->wakers.erase(waker.get());
    }
    state->finished = true;
    beast::error_code ignored;
    socket->cancel(ignored);
  }
};

// Writes SSE events, one HTTP chunk each (raw for HTTP/1.0, whose stream the
// closing connection ends); `last` adds the final empty chunk. False once a
// write fails, or the client has not read for `timeout` (it is dropped).
inline awaitable<bool> WriteEvents(beast::tcp_stream& stream, const std::vector<std::string>& events, bool chunked,
                                   bool last, std::chrono::seconds timeout) {
  beast::error_code ec;
  for (const std::string& e : events) {
    stream.expires_after(timeout);
    if (chunked) {
      co_await net::async_write(stream, bhttp::make_chunk(net::buffer(e)), net::redirect_error(use_awaitable, ec));
    } else {
      co_await net::async_write(stream, net::buffer(e), net::redirect_error(use_awaitable, ec));
    }
    stream.expires_never();
    if (ec) co_return false;
  }
  if (last && chunked) {
    stream.expires_after(timeout);
    co_await net::async_write(stream, bhttp::make_chunk_last(), net::redirect_error(use_awaitable, ec));
    stream.expires_never();
  }
  co_return !ec;
}

}  // namespace kaon::http::beast_support
