// The CPU backend's paged attention (kernels/cpu/paged_attention.h) per ISA
// path: decode steps of 16 sequences at 1k and 4k context, and one 512-token
// prefill, llama-70m's heads (12 query, 4 KV, head_dim 64), block 16, two
// threads. Decode reads every sequence's K and V once per step: GB/s is
// those bytes per second, %read its share of this machine's read bandwidth
// (bench/machine_limits.h, printed first).
//   kaon_cpu_attention_bench [--benchmark_filter=...]   (KAON_BENCH_THREADS: 2)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <vector>

#include "bench/machine_limits.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/thread_pool.h"

namespace {

using kaon::kernels::cpu::CpuIsa;

constexpr int64_t kHeads = 12, kKvHeads = 4, kHeadDim = 64, kBlock = 16;
int g_threads = 2;
kaon::bench::MachineLimits g_limits;

// seqs sequences of `context` tokens; each computes `q_len` new queries.
void BM_Attention(benchmark::State& st, CpuIsa isa, int64_t seqs, int64_t context, int64_t q_len) {
  if (!kaon::kernels::cpu::DetectCpuIsaSupport().Has(isa)) {
    st.SkipWithError("this CPU lacks the path");
    return;
  }
  const int64_t blocks_per_seq = (context + kBlock - 1) / kBlock;
  kaon::kernels::PagedKvShape shape{seqs * blocks_per_seq, kBlock, kKvHeads, kHeadDim};
  std::mt19937 rng(3);
  std::normal_distribution<float> dist;
  std::vector<float> k(shape.layer_elems()), v(shape.layer_elems());
  for (float& x : k) x = dist(rng);
  for (float& x : v) x = dist(rng);
  // Blocks shuffled, as a long-running cache hands them out.
  std::vector<int32_t> table(seqs * blocks_per_seq);
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), rng);
  std::vector<int32_t> qsl(seqs + 1), lens(seqs, static_cast<int32_t>(context));
  for (int64_t s = 0; s <= seqs; ++s) qsl[s] = static_cast<int32_t>(s * q_len);
  kaon::kernels::AttentionMetadata meta{qsl.data(), lens.data(), table.data(), seqs, blocks_per_seq, context};
  const int64_t tokens = seqs * q_len;
  std::vector<float> q(tokens * kHeads * kHeadDim), out(q.size());
  for (float& x : q) x = dist(rng);
  kaon::kernels::cpu::ThreadPool pool(g_threads);
  for (auto _ : st) {
    auto s = kaon::kernels::cpu::PagedAttention(q.data(), kHeads * kHeadDim, k.data(), v.data(), shape, meta, kHeads,
                                                0.125f, out.data(), &pool, isa);
    if (!s.ok()) st.SkipWithError(s.message().c_str());
    benchmark::DoNotOptimize(out.data());
  }
  const double kv_bytes = 2.0 * double(seqs * context * kKvHeads * kHeadDim) * sizeof(float);
  st.counters["GB/s"] = benchmark::Counter(kv_bytes * double(st.iterations()) / 1e9, benchmark::Counter::kIsRate);
  st.counters["%read"] = benchmark::Counter(100.0 * kv_bytes * double(st.iterations()) / 1e9 / g_limits.read_gbps,
                                            benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* t = std::getenv("KAON_BENCH_THREADS")) g_threads = std::max(1, std::atoi(t));
  g_limits = kaon::bench::MeasureMachineLimits(g_threads, 768, 2048);
  std::fputs(kaon::bench::FormatMachineLimits(g_limits).c_str(), stdout);
  for (CpuIsa isa : {CpuIsa::kAvx512, CpuIsa::kAvx2, CpuIsa::kScalar}) {
    const std::string p = kaon::kernels::cpu::CpuIsaName(isa);
    benchmark::RegisterBenchmark((p + "/decode16/ctx1k").c_str(), BM_Attention, isa, 16, 1024, 1)->UseRealTime();
    benchmark::RegisterBenchmark((p + "/decode16/ctx4k").c_str(), BM_Attention, isa, 16, 4096, 1)->UseRealTime();
    benchmark::RegisterBenchmark((p + "/prefill512").c_str(), BM_Attention, isa, 1, 512, 512)->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
