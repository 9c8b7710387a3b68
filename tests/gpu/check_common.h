// Shared pieces of the standalone GPU check (tests/gpu/): a seeded host RNG,
// host-side dtype conversions, RAII device buffers, the normalised error
// metric, the per-case report and the global deadline. No gtest, no absl:
// this builds on the GPU machine with only the CUDA toolkit.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/common/kernel_status.h"

namespace kaon::gpucheck {

// A CUDA call or a kernel entry point failed: the current case fails with this
// message (and, after a sticky error, so will the ones after it).
struct CheckError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#define KAON_CHECK_CUDA(expr)                                                                      \
  do {                                                                                             \
    const cudaError_t e_ = (expr);                                                                 \
    if (e_ != cudaSuccess)                                                                         \
      throw ::kaon::gpucheck::CheckError(std::string(#expr) + ": " + cudaGetErrorString(e_));     \
  } while (0)

#define KAON_CHECK_OK(expr)                                                                        \
  do {                                                                                             \
    const ::kaon::kernels::KernelStatus s_ = (expr);                                               \
    if (!s_.ok()) throw ::kaon::gpucheck::CheckError(std::string(#expr) + ": " + s_.message());   \
  } while (0)

// xoshiro256** seeded through splitmix64: fast enough to fill the timing
// buffers (hundreds of MB) in well under a second.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& w : s_) {
      seed += 0x9E3779B97F4A7C15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      w = z ^ (z >> 31);
    }
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }  // [0, 1)
  int64_t Int(int64_t lo, int64_t hi) {  // [lo, hi]
    return lo + static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }
  double Normal() {  // Box-Muller
    const double u1 = 1.0 - Uniform(), u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Host-side view of each activation dtype: its name in the table, the
// round-to-nearest-even conversion the kernels' inputs go through, and the
// pass threshold on ||out - ref|| / ||ref|| (METHOD.md: fp32 arithmetic lands
// far under 1e-3, bf16 operands between 1e-3 and 1e-2; fp16 keeps 3 more
// mantissa bits than bf16, so 8x tighter).
template <typename T>
struct Dt;
template <>
struct Dt<float> {
  static constexpr const char* kName = "f32";
  static constexpr double kTol = 1e-5;
  static float From(double v) { return static_cast<float>(v); }
  static double To(float v) { return v; }
};
template <>
struct Dt<__nv_bfloat16> {
  static constexpr const char* kName = "bf16";
  static constexpr double kTol = 1e-2;
  static __nv_bfloat16 From(double v) { return __float2bfloat16_rn(static_cast<float>(v)); }
  static double To(__nv_bfloat16 v) { return __bfloat162float(v); }
};
template <>
struct Dt<__half> {
  static constexpr const char* kName = "f16";
  static constexpr double kTol = 2e-3;
  static __half From(double v) { return __float2half_rn(static_cast<float>(v)); }
  static double To(__half v) { return __half2float(v); }
};

// Random values as the kernel sees them (dtype T) and as the fp64 reference
// sees them (exactly the same numbers, widened).
template <typename T>
struct HostTensor {
  std::vector<T> t;
  std::vector<double> d;
  void Set(size_t i, double v) {
    t[i] = Dt<T>::From(v);
    d[i] = Dt<T>::To(t[i]);
  }
};

template <typename T>
HostTensor<T> RandomTensor(Rng& rng, size_t n, double scale = 1.0, double mean = 0.0) {
  HostTensor<T> h{std::vector<T>(n), std::vector<double>(n)};
  for (size_t i = 0; i < n; ++i) h.Set(i, mean + scale * rng.Normal());
  return h;
}

template <typename T>
std::vector<double> Widen(const std::vector<T>& v) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = Dt<T>::To(v[i]);
  return out;
}

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (n_ > 0) KAON_CHECK_CUDA(cudaMalloc(&p_, bytes()));
  }
  explicit DeviceBuffer(const std::vector<T>& h) : DeviceBuffer(h.size()) { Upload(h); }
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return p_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }
  void Upload(const std::vector<T>& h) {
    if (h.size() != n_) throw CheckError("upload size mismatch");
    if (n_) KAON_CHECK_CUDA(cudaMemcpy(p_, h.data(), bytes(), cudaMemcpyHostToDevice));
  }
  std::vector<T> Download() const {
    std::vector<T> h(n_);
    if (n_) KAON_CHECK_CUDA(cudaMemcpy(h.data(), p_, bytes(), cudaMemcpyDeviceToHost));
    return h;
  }
  // All-ones bytes: NaN in fp32, bf16 and fp16 alike, -1 in integers. An
  // element the kernel should have written but did not stays NaN and fails.
  void Poison() {
    if (n_) KAON_CHECK_CUDA(cudaMemset(p_, 0xFF, bytes()));
  }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

// ||out - ref|| / ||ref|| (absolute ||out - ref|| when ref is all zeros).
// Any NaN or inf in out gives NaN, which no threshold passes.
inline double RelErr(const std::vector<double>& out, const std::vector<double>& ref) {
  if (out.size() != ref.size()) return NAN;
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) return NAN;
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}

// Bitwise equality, for copies (embedding, cache writes, conversions).
template <typename T>
size_t CountBitMismatches(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return a.size() + b.size();
  size_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i) bad += std::memcmp(&a[i], &b[i], sizeof(T)) != 0;
  return bad;
}

using Clock = std::chrono::steady_clock;

struct CaseResult {
  std::string kernel, dtype, shape;
  double err = 0.0, tol = 0.0;
  bool pass = false;
  std::string note;
};

struct TimingResult {
  std::string name, shape;
  double median_ms = 0.0;
  double bytes = 0.0;  // the fewest bytes the op must move (0: not memory-bound)
  double flops = 0.0;  // 0: not counted
  std::string note;
};

struct Context {
  uint64_t seed = 0;
  Clock::time_point deadline;
  std::string only;  // run only kernels whose name contains this
  std::vector<CaseResult> cases;
  std::vector<TimingResult> timings;
  double copy_gbps = 0.0;

  bool PastDeadline() const { return Clock::now() >= deadline; }
  bool Selected(const std::string& kernel) const {
    return only.empty() || kernel.find(only) != std::string::npos;
  }
  void Record(CaseResult r) {
    std::printf("  [%s] %-18s %-4s %-58s err=%.3g tol=%.3g%s%s\n", r.pass ? "PASS" : "FAIL", r.kernel.c_str(),
                r.dtype.c_str(), r.shape.c_str(), r.err, r.tol, r.note.empty() ? "" : "  ", r.note.c_str());
    std::fflush(stdout);
    cases.push_back(std::move(r));
  }
};

void RunKernelChecks(Context& ctx);
void RunKernelTimings(Context& ctx);

}  // namespace kaon::gpucheck
