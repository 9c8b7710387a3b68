// One benchmark run: sends the dataset on the arrival schedule, at most
// --max-concurrency at a time (later arrivals wait, and their clock starts
// when they are actually sent, as in vLLM), all on one io thread. The
// requests go over HTTP (Beast coroutines on that thread) or, with
// RunOptions::grpc, over gRPC (callback reactors whose completions are posted
// back to it); arrivals and the concurrency limit are the same for both.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "bench/kaon_bench/dataset.h"
#include "bench/kaon_bench/grpc_client.h"
#include "bench/kaon_bench/http_client.h"
#include "bench/kaon_bench/request_body.h"
#include "bench/kaon_bench/request_output.h"

namespace kaon::bench {

struct RunOptions {
  Endpoint endpoint;
  std::string path = "/v1/completions";
  std::string api_key;
  BodyOptions body;
  double request_rate = std::numeric_limits<double>::infinity();
  double burstiness = 1.0;
  int max_concurrency = 0;  // 0: unlimited
  uint64_t seed = 0;
  double timeout_s = 6 * 3600;
  bool show_progress = true;
  std::string label = "kaon-bench";
  // Set: the kaon-grpc backend (Generate with text input, body's model,
  // ignore_eos and temperature); endpoint and path are then unused.
  std::shared_ptr<GrpcClient> grpc;
};

struct RunResult {
  std::vector<RequestOutput> outputs;
  double duration_s = 0;  // first send to last finish
};

// Throws std::runtime_error when the HTTP host cannot be resolved.
RunResult RunBenchmark(const std::vector<SampleRequest>& requests, const RunOptions& o);

}  // namespace kaon::bench
