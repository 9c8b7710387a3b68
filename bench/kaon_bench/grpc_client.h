// The kaon-grpc side of kaon-bench: one streamed kaon.v1.Generation/Generate
// per request on gRPC's callback API (a ClientReadReactor per request, so
// thousands of concurrent streams need no thread each), timestamped as each
// message arrives, plus blocking ListModels and Tokenize. No gRPC header leaks
// out of here: callers see only RequestOutput.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "bench/kaon_bench/request_output.h"

namespace kaon::bench {

// "grpc://host:port" or "host:port" (IPv6: "[::1]:port") -> "host:port", the
// gRPC target. Throws std::runtime_error for anything else (http:// included).
std::string ParseGrpcTarget(const std::string& url);

struct GrpcGenerateOptions {
  std::string model;
  bool ignore_eos = false;
  double temperature = 0.0;
  std::string api_key;          // sent as `authorization: Bearer KEY`
  double timeout_s = 6 * 3600;  // the call's deadline
};

class GrpcClient {
 public:
  // `channels`: HTTP/2 connections to spread the streams over (a server
  // allows ~100 concurrent streams per connection; more would queue in the
  // client and be measured as server latency).
  GrpcClient(const std::string& target, int channels = 1);
  ~GrpcClient();
  GrpcClient(const GrpcClient&) = delete;
  GrpcClient& operator=(const GrpcClient&) = delete;

  const std::string& target() const { return target_; }

  // Starts one streamed Generate of `prompt` (text input) with max_tokens
  // `max_tokens` and fills *out (start_s, ttft_s, itl_s, latency_s, usage,
  // success or the status code and message) relative to `run_start`. `done`
  // runs once, on a gRPC thread, after *out is final. Never throws.
  void StartGenerate(const GrpcGenerateOptions& o, const std::string& prompt, int64_t max_tokens,
                     std::chrono::steady_clock::time_point run_start, RequestOutput* out, std::function<void()> done);

  // The first model of ListModels. Throws std::runtime_error.
  std::string FirstModel(const std::string& api_key, double timeout_s = 30);

  // Tokenize (text, without special tokens): the token count, or nullopt
  // when the call failed.
  std::optional<int64_t> CountTokens(const std::string& model, const std::string& text, const std::string& api_key,
                                     double timeout_s = 30);

 private:
  struct Impl;
  std::string target_;
  std::unique_ptr<Impl> impl_;
};

// Channels for a run of `requests` at most `max_concurrency` (0: unlimited)
// at a time: one per 64 concurrent streams, at most 64.
int GrpcChannelsFor(int max_concurrency, int requests);

}  // namespace kaon::bench
