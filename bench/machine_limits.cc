#include "bench/machine_limits.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <thread>
#include <vector>

namespace kaon::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

// Sums 64-bit words so the compiler vectorises the loop (an fp32 sum would
// be one dependent add per element); built for AVX2 too, because at baseline
// SSE2 two cores cannot issue loads as fast as DRAM delivers them (measured:
// 40 GB/s with SSE2 on a VM whose llama.cpp decode streams 70 GB/s).
__attribute__((target("avx2"))) uint64_t SumWordsAvx2(const uint64_t* p, size_t n) {
  uint64_t s[8] = {};
  for (size_t i = 0; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) s[j] += p[i + j];
  }
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

uint64_t SumWords(const uint64_t* p, size_t n) {
  if (__builtin_cpu_supports("avx2")) return SumWordsAvx2(p, n);
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = 0; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

double ReadGbps(int threads, int repeats) {
  // 1 GiB: ~30× a 32 MiB L3, so nearly every byte comes from DRAM.
  const size_t words = (size_t{1} << 30) / sizeof(uint64_t);
  std::unique_ptr<uint64_t[]> buf(new uint64_t[words]);
  for (size_t i = 0; i < words; ++i) buf[i] = i;  // touch every page first
  double best = 0;
  std::vector<uint64_t> sums(static_cast<size_t>(threads));
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        const size_t b = words * t / threads, e = words * (t + 1) / threads;
        sums[static_cast<size_t>(t)] = SumWords(buf.get() + b, e - b);
      });
    }
    for (auto& t : ts) t.join();
    best = std::max(best, double(words * sizeof(uint64_t)) / Seconds(t0, Clock::now()) / 1e9);
  }
  volatile uint64_t sink = sums[0];
  (void)sink;
  return best;
}

double SgemmGflops(int threads, int64_t m, int64_t k, int64_t n, int repeats) {
  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  std::vector<float> x(static_cast<size_t>(m * k)), w(static_cast<size_t>(n * k)), y(static_cast<size_t>(m * n));
  for (float& v : x) v = dist(rng);
  for (float& v : w) v = dist(rng);
  openblas_set_num_threads(threads);
  double best = 0;
  for (int r = 0; r < repeats + 1; ++r) {  // the first run warms caches and OpenBLAS's threads
    const auto t0 = Clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), 1.0f, x.data(), int(k), w.data(),
                int(k), 0.0f, y.data(), int(n));
    const double s = Seconds(t0, Clock::now());
    if (r > 0) best = std::max(best, 2.0 * double(m) * double(n) * double(k) / s / 1e9);
  }
  return best;
}

}  // namespace

MachineLimits MeasureMachineLimits(int threads, int64_t k, int64_t n, int repeats) {
  MachineLimits l;
  l.cpu_model = CpuModel();
  l.threads = threads;
  l.k = k;
  l.n = n;
  l.read_gbps = ReadGbps(threads, repeats);
  l.sgemm_m16_gflops = SgemmGflops(threads, 16, k, n, repeats);
  l.sgemm_m128_gflops = SgemmGflops(threads, 128, k, n, repeats);
  return l;
}

std::string FormatMachineLimits(const MachineLimits& l) {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "| CPU | threads | read GB/s | sgemm K=%lld N=%lld, M=16 GFLOP/s | M=128 GFLOP/s |\n"
                "| --- | ---: | ---: | ---: | ---: |\n"
                "| %s | %d | %.1f | %.1f | %.1f |\n",
                static_cast<long long>(l.k), static_cast<long long>(l.n), l.cpu_model.c_str(), l.threads,
                l.read_gbps, l.sgemm_m16_gflops, l.sgemm_m128_gflops);
  return buf;
}

}  // namespace kaon::bench
