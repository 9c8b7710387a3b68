// What this machine can do, measured the way the CPU backend's targets are
// stated (issue: "CPU backend ahead of llama.cpp"): DRAM read bandwidth and
// OpenBLAS's sgemm rate at a model's layer shape, with a given thread count,
// best of `repeats`. Printed next to every CPU benchmark table, because these
// VMs vary by 1.5× from one day (or host) to the next.
#pragma once

#include <cstdint>
#include <string>

namespace kaon::bench {

struct MachineLimits {
  std::string cpu_model;   // /proc/cpuinfo "model name"
  int threads = 0;
  double read_gbps = 0;    // GB/s (1e9 bytes) summing a buffer far larger than L3
  int64_t k = 0, n = 0;    // the sgemm shape: x [m, k] · w [n, k]ᵀ
  double sgemm_m16_gflops = 0;
  double sgemm_m128_gflops = 0;
};

// k = hidden size, n = intermediate size.
MachineLimits MeasureMachineLimits(int threads, int64_t k, int64_t n, int repeats = 5);

// One markdown table row set: "| cpu | threads | read GB/s | sgemm ... |".
std::string FormatMachineLimits(const MachineLimits& l);

}  // namespace kaon::bench
