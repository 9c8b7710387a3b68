// The HTTP side of kaon-bench (Boost.Beast, plain http:// only): one
// streaming request as a coroutine that timestamps each SSE event as it is
// read, plus blocking calls for /v1/models, /tokenize and /metrics.
#pragma once

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <string>

#include "bench/kaon_bench/request_output.h"

namespace kaon::bench {

using Clock = std::chrono::steady_clock;

struct Endpoint {
  std::string host = "127.0.0.1";
  std::string port = "80";
  std::string base_path;  // prefix of every request path, without a trailing '/'
};

// "http://host[:port][/path]"; throws std::runtime_error for anything else (https included).
Endpoint ParseBaseUrl(const std::string& url);

struct StreamCall {
  boost::asio::ip::tcp::resolver::results_type endpoints;
  std::string host_header;
  std::string target;  // full path
  std::string body;    // JSON
  std::string api_key;
  double timeout_s = 6 * 3600;  // vLLM's aiohttp client default
  Clock::time_point run_start;
};

// Sends call.body as a POST and fills *out (start_s, ttft_s, itl_s, latency_s,
// usage, success or error). Never throws.
boost::asio::awaitable<void> StreamRequest(StreamCall call, RequestOutput* out);

struct HttpReply {
  int status = 0;     // 0: transport error
  std::string body;
  std::string error;  // transport error text
};

HttpReply HttpCall(const Endpoint& ep, const std::string& method, const std::string& path, const std::string& body,
                   const std::string& api_key, double timeout_s = 30);

}  // namespace kaon::bench
