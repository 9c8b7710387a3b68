// The CPU backend's GEMM (kaon::cpu::Gemm over kernels/cpu/gemm.h, per ISA
// path; fp32 weights, and bf16 as kaon_bf16_*) against OpenBLAS, at llama-70m's layer shapes (or a config's),
// M = 1 … 128 rows, two threads. Figures are GB/s of weights read and
// GFLOP/s, also as % of this machine's limits (bench/machine_limits.h, printed
// first): read bandwidth for M ≤ 16, where a step streams the weights, and
// the sgemm rate at M = 16 or 128.
//
// Weights rotate over enough copies (≥ 512 MiB) that each call reads them
// from DRAM, as a decode step reads a model too big for L3.
//   kaon_cpu_gemm_bench [--benchmark_filter=...]   (KAON_BENCH_THREADS: 2)
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "bench/machine_limits.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/thread_pool.h"
#include "server/backend/cpu/gemm.h"

namespace {

using kaon::kernels::cpu::CpuIsa;

int g_threads = 2;
kaon::bench::MachineLimits g_limits;

template <typename T>
struct Weights {
  int64_t n, k;
  std::vector<std::vector<T>> copies;
  size_t next = 0;
  const T* Next() { return copies[next++ % copies.size()].data(); }
};

uint16_t Bf16Bits(float f) {  // truncation is enough for timing
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return static_cast<uint16_t>(u >> 16);
}

template <typename T>
Weights<T>& WeightsFor(int64_t n, int64_t k) {
  static std::vector<std::unique_ptr<Weights<T>>> cache;
  for (auto& w : cache) {
    if (w->n == n && w->k == k) return *w;
  }
  auto w = std::make_unique<Weights<T>>();
  w->n = n;
  w->k = k;
  const size_t bytes = size_t(n * k) * sizeof(T);
  const size_t copies = std::max<size_t>(2, (size_t{512} << 20) / bytes);
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  w->copies.resize(copies);
  for (auto& c : w->copies) {
    c.resize(size_t(n * k));
    for (T& v : c) {
      if constexpr (sizeof(T) == 2) {
        v = Bf16Bits(dist(rng));
      } else {
        v = dist(rng);
      }
    }
  }
  cache.push_back(std::move(w));
  return *cache.back();
}

void Report(benchmark::State& st, int64_t m, int64_t n, int64_t k, size_t elem) {
  const double bytes = double(n * k) * double(elem), flops = 2.0 * double(m * n * k);
  st.counters["GB/s"] = benchmark::Counter(bytes * double(st.iterations()) / 1e9, benchmark::Counter::kIsRate);
  st.counters["GFLOP/s"] = benchmark::Counter(flops * double(st.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

// Filled in after the run from the rates: % of the machine's limits.
void Percentages(benchmark::State& st, int64_t m, double seconds_per_iter, int64_t n, int64_t k, size_t elem) {
  const double gbps = double(n * k) * double(elem) / seconds_per_iter / 1e9;
  const double gflops = 2.0 * double(m * n * k) / seconds_per_iter / 1e9;
  st.counters["%read"] = 100.0 * gbps / g_limits.read_gbps;
  st.counters["%sgemm"] = 100.0 * gflops / (m <= 16 ? g_limits.sgemm_m16_gflops : g_limits.sgemm_m128_gflops);
}

template <typename T = float, class Fn>
void Run(benchmark::State& st, int64_t n, int64_t k, Fn fn) {
  const int64_t m = st.range(0);
  Weights<T>& w = WeightsFor<T>(n, k);
  std::vector<float> x(size_t(m * k), 0.5f), y(size_t(m * n));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 17) * 0.01f;
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : st) {
    fn(x.data(), w.Next(), m, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Report(st, m, n, k, sizeof(T));
  Percentages(st, m, s / double(st.iterations()), n, k, sizeof(T));
}

void BM_Kaon(benchmark::State& st, CpuIsa isa, int64_t n, int64_t k) {
  if (!kaon::kernels::cpu::DetectCpuIsaSupport().Has(isa)) {
    st.SkipWithError("this CPU lacks the path");
    return;
  }
  kaon::kernels::cpu::ThreadPool pool(g_threads);
  Run(st, n, k, [&](const float* x, const float* w, int64_t m, float* y) {
    kaon::cpu::Gemm(isa, x, w, nullptr, m, k, n, y, &pool);
  });
}

// bf16 weights (half the bytes), as the backend runs them: on avx512bf16 x
// is rounded once into a buffer first.
void BM_KaonBf16(benchmark::State& st, CpuIsa isa, int64_t n, int64_t k) {
  if (!kaon::kernels::cpu::DetectCpuIsaSupport().Has(isa)) {
    st.SkipWithError("this CPU lacks the path");
    return;
  }
  kaon::kernels::cpu::ThreadPool pool(g_threads);
  std::vector<uint16_t> xb(size_t(st.range(0) * k));
  Run<uint16_t>(st, n, k, [&](const float* x, const uint16_t* w, int64_t m, float* y) {
    kaon::cpu::Gemm(isa, x, w, nullptr, m, k, n, y, &pool, xb.data(), static_cast<int64_t>(xb.size()));
  });
}

// What the backend did before its own kernels: single-threaded OpenBLAS per
// column slice of the pool, sgemv at M = 1.
void BM_OpenBlasSlices(benchmark::State& st, int64_t n, int64_t k) {
  openblas_set_num_threads(1);
  kaon::kernels::cpu::ThreadPool pool(g_threads);
  Run(st, n, k, [&](const float* x, const float* w, int64_t m, float* y) {
    pool.ParallelFor((n + 15) / 16, [&](int64_t c0, int64_t c1, int) {
      const int64_t n0 = c0 * 16, n1 = std::min(n, c1 * 16);
      if (m == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, int(n1 - n0), int(k), 1.0f, w + n0 * k, int(k), x, 1, 0.0f, y + n0,
                    1);
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n1 - n0), int(k), 1.0f, x, int(k),
                    w + n0 * k, int(k), 0.0f, y + n0, int(n));
      }
    });
  });
}

// OpenBLAS's own threads on the whole product.
void BM_OpenBlasThreaded(benchmark::State& st, int64_t n, int64_t k) {
  openblas_set_num_threads(g_threads);
  Run(st, n, k, [&](const float* x, const float* w, int64_t m, float* y) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), 1.0f, x, int(k), w, int(k), 0.0f, y,
                int(n));
  });
  openblas_set_num_threads(1);
}

void RegisterAll(int64_t hidden, int64_t inter) {
  struct Shape {
    const char* name;
    int64_t n, k;
  };
  const Shape shapes[] = {{"gate_up", 2 * inter, hidden}, {"down", hidden, inter}};
  for (const Shape& s : shapes) {
    auto args = [](benchmark::internal::Benchmark* b) {
      for (int m : {1, 4, 16, 64, 128}) b->Arg(m);
      b->ArgName("M")->UseRealTime()->MinTime(0.3);
    };
    // fp32 weights (avx512bf16 runs avx512's fp32 kernels, so it is not
    // listed here).
    for (CpuIsa isa : {CpuIsa::kAvx512, CpuIsa::kAvx2, CpuIsa::kScalar}) {
      const std::string name = std::string("kaon_") + kaon::kernels::cpu::CpuIsaName(isa) + "/" + s.name;
      args(benchmark::RegisterBenchmark(name.c_str(), BM_Kaon, isa, s.n, s.k));
    }
    for (CpuIsa isa : {CpuIsa::kAvx512Bf16, CpuIsa::kAvx512, CpuIsa::kAvx2}) {
      const std::string name = std::string("kaon_bf16_") + kaon::kernels::cpu::CpuIsaName(isa) + "/" + s.name;
      args(benchmark::RegisterBenchmark(name.c_str(), BM_KaonBf16, isa, s.n, s.k));
    }
    args(benchmark::RegisterBenchmark((std::string("openblas_slices/") + s.name).c_str(), BM_OpenBlasSlices, s.n,
                                      s.k));
    args(benchmark::RegisterBenchmark((std::string("openblas_threaded/") + s.name).c_str(), BM_OpenBlasThreaded,
                                      s.n, s.k));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* t = std::getenv("KAON_BENCH_THREADS")) g_threads = std::max(1, std::atoi(t));
  // llama-70m's layer: hidden 768, intermediate 2048.
  const int64_t hidden = 768, inter = 2048;
  g_limits = kaon::bench::MeasureMachineLimits(g_threads, hidden, inter);
  std::fputs(kaon::bench::FormatMachineLimits(g_limits).c_str(), stdout);
  RegisterAll(hidden, inter);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
