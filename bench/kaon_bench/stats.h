// Summary statistics with numpy's conventions (population std, linearly
// interpolated percentiles), so numbers line up with `vllm bench serve`.
#pragma once

#include <vector>

namespace kaon::bench {

double Mean(const std::vector<double>& x);    // 0 for an empty list, as vLLM's np.mean(x or 0)
double Median(const std::vector<double>& x);
double StdDev(const std::vector<double>& x);   // ddof = 0
// p in [0, 100]; numpy.percentile's default "linear" method.
double Percentile(std::vector<double> x, double p);

}  // namespace kaon::bench
