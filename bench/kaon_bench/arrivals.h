// When each request is sent, as `vllm bench serve` schedules them: with
// --request-rate inf all at t = 0; otherwise the gaps are gamma-distributed
// with shape = burstiness and mean 1 / rate (burstiness 1: a Poisson process;
// < 1 burstier, > 1 more regular). The first request goes at t = 0.
#pragma once

#include <cstdint>
#include <vector>

namespace kaon::bench {

// Send offsets in seconds from the start of the run, non-decreasing.
std::vector<double> ArrivalOffsets(int num_requests, double request_rate, double burstiness, uint64_t seed);

}  // namespace kaon::bench
