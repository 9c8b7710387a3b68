// The sweep's throughput-latency plot as a self-contained SVG (no plotting
// library): two panels, TTFT and TPOT (median and p99) against output token
// throughput, one point per swept rate, labelled with the rate.
#pragma once

#include <string>
#include <vector>

#include "bench/kaon_bench/sweep.h"

namespace kaon::bench {

std::string SweepSvg(const std::vector<SweepPoint>& points, const SloThresholds& slo, const std::string& title);

}  // namespace kaon::bench
