// kaon_gpu_check: the standalone GPU check (see tests/gpu/check.sh).
//
//   kaon_gpu_check [--seed=N] [--only=KERNEL] [--no-timing] [--check-seconds=S] [--deadline-seconds=S]
//
// Part 1 compares every CUDA kernel in every dtype with an fp64 host reference
// on fresh random inputs (the seed is printed; pass it back to replay a run);
// part 2 times the copy ceiling and a few kernels. A compact table comes last.
// Exit status: 0 when every check passed, 1 otherwise, and 77 when there is
// no CUDA device (it prints "no CUDA device" and does nothing): ctest counts
// 77 as skipped, so CI never reports a GPU check as passed.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>

#include "tests/gpu/check_common.h"

namespace kaon::gpucheck {
namespace {

struct Options {
  uint64_t seed = 0;
  bool seed_given = false;
  bool timing = true;
  std::string only;
  double check_seconds = 150.0;     // part 1 stops starting cases after this
  double deadline_seconds = 240.0;  // everything stops starting work after this
};

// What ctest's SKIP_RETURN_CODE and check.sh take for "skipped".
constexpr int kNoDeviceExitCode = 77;

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* key) -> const char* {
      const std::string k = std::string(key) + "=";
      return a.rfind(k, 0) == 0 ? argv[i] + k.size() : nullptr;
    };
    if (const char* v = value("--seed")) {
      o->seed = std::strtoull(v, nullptr, 0);
      o->seed_given = true;
    } else if (const char* v2 = value("--only")) {
      o->only = v2;
    } else if (const char* v3 = value("--check-seconds")) {
      o->check_seconds = std::atof(v3);
    } else if (const char* v4 = value("--deadline-seconds")) {
      o->deadline_seconds = std::atof(v4);
    } else if (a == "--no-timing") {
      o->timing = false;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--seed=N] [--only=KERNEL] [--no-timing] [--check-seconds=S] "
                   "[--deadline-seconds=S]\n",
                   argv[0]);
      return false;
    }
  }
  return true;
}

Clock::time_point After(Clock::time_point t0, double seconds) {
  return t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

void PrintTables(const Context& ctx, const cudaDeviceProp& prop) {
  struct Row { int cases = 0, passed = 0; double worst = 0.0, tol = 0.0; bool nan = false; std::string worst_shape, note; };
  std::map<std::pair<std::string, std::string>, Row> rows;
  std::vector<std::pair<std::string, std::string>> order;
  for (const CaseResult& c : ctx.cases) {
    const auto key = std::make_pair(c.kernel, c.dtype);
    if (!rows.count(key)) order.push_back(key);
    Row& r = rows[key];
    ++r.cases;
    r.passed += c.pass;
    r.tol = c.tol;
    if (std::isnan(c.err)) r.nan = true;
    if (!c.pass && r.note.empty()) r.note = c.shape + (c.note.empty() ? "" : ": " + c.note);
    if (c.err > r.worst) {
      r.worst = c.err;
      r.worst_shape = c.shape;
    }
  }
  std::printf("\n== kaon GPU check — %s (sm_%d%d, %d SMs), seed %llu\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, static_cast<unsigned long long>(ctx.seed));
  std::printf("%-20s %-5s %7s %12s %9s  %s\n", "kernel", "dtype", "passed", "worst err", "tol", "result");
  for (const auto& key : order) {
    const Row& r = rows.at(key);
    const bool ok = r.passed == r.cases;
    char err[32];
    if (r.nan) std::snprintf(err, sizeof err, "NaN");
    else std::snprintf(err, sizeof err, "%.3g", r.worst);
    std::printf("%-20s %-5s %3d/%-3d %12s %9.3g  %s%s%s\n", key.first.c_str(), key.second.c_str(), r.passed, r.cases,
                err, r.tol, ok ? "PASS" : "FAIL", ok ? "" : "  first failure: ", ok ? "" : r.note.c_str());
  }
  if (!ctx.timings.empty()) {
    std::printf("\n%-28s %-40s %10s %9s %7s %9s\n", "timing (median, events)", "shape", "ms", "GB/s", "%copy",
                "TFLOP/s");
    for (const TimingResult& t : ctx.timings) {
      const double s = t.median_ms * 1e-3;
      const bool have = t.median_ms > 0;
      char gbps[16] = "-", pct[16] = "-", tflops[16] = "-", ms[16] = "-";
      if (have) std::snprintf(ms, sizeof ms, "%.4f", t.median_ms);
      if (have && t.bytes > 0) std::snprintf(gbps, sizeof gbps, "%.0f", t.bytes / s / 1e9);
      if (have && t.bytes > 0 && ctx.copy_gbps > 0)
        std::snprintf(pct, sizeof pct, "%.0f%%", 100.0 * t.bytes / s / 1e9 / ctx.copy_gbps);
      if (have && t.flops > 0) std::snprintf(tflops, sizeof tflops, "%.1f", t.flops / s / 1e12);
      std::printf("%-28s %-40s %10s %9s %7s %9s %s\n", t.name.c_str(), t.shape.c_str(), ms, gbps, pct, tflops,
                  t.note.c_str());
    }
  }
}

}  // namespace
}  // namespace kaon::gpucheck

int main(int argc, char** argv) {
  using namespace kaon::gpucheck;
  Options opt;
  if (!ParseArgs(argc, argv, &opt)) return 2;

  int devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0) {
    std::printf("no CUDA device (%s); nothing to check\n", e != cudaSuccess ? cudaGetErrorString(e) : "count 0");
    return kNoDeviceExitCode;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    std::printf("FAIL: cudaGetDeviceProperties\n");
    return 1;
  }
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  std::printf("device 0: %s, sm_%d%d, %d SMs, %.1f GiB, L2 %d MiB; driver %d, runtime %d\n", prop.name, prop.major,
              prop.minor, prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0, prop.l2CacheSize >> 20,
              driver, runtime);
  if (prop.major != 9 || prop.minor != 0) {
    std::printf("warning: the kernels are built for sm_90a only; expect launch failures on this device\n");
  }

  Context ctx;
  ctx.seed = opt.seed_given ? opt.seed : (std::random_device{}() | (static_cast<uint64_t>(std::random_device{}()) << 32));
  ctx.only = opt.only;
  std::printf("seed %llu (replay with --seed=%llu)\n", static_cast<unsigned long long>(ctx.seed),
              static_cast<unsigned long long>(ctx.seed));
  const Clock::time_point t0 = Clock::now();

  std::printf("\n-- part 1: kernels vs fp64 reference (budget %.0f s)\n", opt.check_seconds);
  ctx.deadline = After(t0, std::min(opt.check_seconds, opt.deadline_seconds));
  RunKernelChecks(ctx);
  const double t_check = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("part 1 took %.1f s\n", t_check);

  if (opt.timing && opt.only.empty()) {
    std::printf("\n-- part 2: timings (until %.0f s)\n", opt.deadline_seconds);
    ctx.deadline = After(t0, opt.deadline_seconds);
    RunKernelTimings(ctx);
  }

  PrintTables(ctx, prop);
  int failed = 0;
  for (const CaseResult& c : ctx.cases) failed += !c.pass;
  const bool ok = failed == 0 && !ctx.cases.empty();
  std::printf("\nRESULT: %s — %zu cases, %d failed, %.1f s, seed %llu\n", ok ? "PASS" : "FAIL", ctx.cases.size(), failed,
              std::chrono::duration<double>(Clock::now() - t0).count(), static_cast<unsigned long long>(ctx.seed));
  return ok ? 0 : 1;
}
