#include "bench/kaon_bench/arrivals.h"

#include <cmath>
#include <random>

namespace kaon::bench {

std::vector<double> ArrivalOffsets(int num_requests, double request_rate, double burstiness, uint64_t seed) {
  std::vector<double> out(static_cast<size_t>(std::max(num_requests, 0)), 0.0);
  if (std::isinf(request_rate) || request_rate <= 0) return out;
  std::mt19937_64 rng(seed);
  // scale = 1 / (rate * burstiness) keeps the mean gap at 1 / rate.
  std::gamma_distribution<double> gap(burstiness, 1.0 / (request_rate * burstiness));
  double t = 0;
  for (size_t i = 1; i < out.size(); ++i) {
    t += gap(rng);
    out[i] = t;
  }
  return out;
}

}  // namespace kaon::bench
