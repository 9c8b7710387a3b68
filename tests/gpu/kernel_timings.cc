// Timing part of the GPU check: the device-to-device copy bandwidth measured in
// this run (the memory ceiling, counting bytes read plus written) and a few
// kernels at serving sizes, as achieved GB/s (against that copy) or TFLOP/s.
// CUDA events around each launch, warm-up first, median of the repeats; every
// op is capped in repeats and seconds, and all stop at the global deadline.
// Inputs are random (never zeros: they can run faster than real data).
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/paged_kv.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/paged_attention.h"
#include "kernels/cuda/rmsnorm.h"
#include "kernels/cuda/sampling.h"
#include "tests/gpu/check_common.h"

namespace kaon::gpucheck {
namespace {

namespace gpu = kaon::kernels::gpu;
using std::to_string;

constexpr int kWarmup = 3;
constexpr int kMaxReps = 30;
constexpr double kMaxSecondsPerOp = 3.0;

// Fills a device buffer with random values of type T in [-1, 1): a 16 MiB
// random chunk uploaded once and replicated on the device, which is fast and
// as good as fully random for timing (caches key on addresses, not values).
template <typename T>
void FillRandom(T* p, size_t n, Rng& rng) {
  const size_t chunk = std::min(n, (size_t{16} << 20) / sizeof(T));
  std::vector<T> h(chunk);
  for (auto& v : h) v = Dt<T>::From(static_cast<double>(static_cast<int64_t>(rng.Next() >> 40) - (1 << 23)) / (1 << 23));
  KAON_CHECK_CUDA(cudaMemcpy(p, h.data(), chunk * sizeof(T), cudaMemcpyHostToDevice));
  for (size_t off = chunk; off < n; off += chunk) {
    KAON_CHECK_CUDA(cudaMemcpy(p + off, p, std::min(chunk, n - off) * sizeof(T), cudaMemcpyDeviceToDevice));
  }
}

class Events {
 public:
  Events() {
    KAON_CHECK_CUDA(cudaEventCreate(&start_));
    KAON_CHECK_CUDA(cudaEventCreate(&stop_));
  }
  ~Events() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  // Median milliseconds of `op` over up to kMaxReps timed runs.
  double MedianMs(Context& ctx, const std::function<void()>& op) {
    for (int i = 0; i < kWarmup; ++i) op();
    KAON_CHECK_CUDA(cudaDeviceSynchronize());
    std::vector<double> ms;
    const Clock::time_point until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                       std::chrono::duration<double>(kMaxSecondsPerOp));
    while (static_cast<int>(ms.size()) < kMaxReps && (ms.size() < 3 || (Clock::now() < until && !ctx.PastDeadline()))) {
      KAON_CHECK_CUDA(cudaEventRecord(start_));
      op();
      KAON_CHECK_CUDA(cudaEventRecord(stop_));
      KAON_CHECK_CUDA(cudaEventSynchronize(stop_));
      float t = 0.0f;
      KAON_CHECK_CUDA(cudaEventElapsedTime(&t, start_, stop_));
      ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }

 private:
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

void Time(Context& ctx, const std::string& name, const std::string& shape, double bytes, double flops,
          const std::function<std::function<void()>()>& setup) {
  TimingResult t{name, shape, NAN, bytes, flops, ""};
  if (ctx.PastDeadline()) {
    t.note = "skipped: past the deadline";
  } else {
    try {
      Events ev;
      const std::function<void()> op = setup();  // allocates, fills, returns the launch
      t.median_ms = ev.MedianMs(ctx, op);
    } catch (const CheckError& e) {
      t.note = e.what();
    }
  }
  std::printf("  [time] %-28s %-40s %10.4f ms %s\n", t.name.c_str(), t.shape.c_str(), t.median_ms, t.note.c_str());
  std::fflush(stdout);
  ctx.timings.push_back(std::move(t));
}

void Ok(const kernels::KernelStatus& st) {
  if (!st.ok()) throw CheckError(st.message());
}

}  // namespace

void RunKernelTimings(Context& ctx) {
  Rng rng(ctx.seed ^ 0x7157ull);
  using bf16 = __nv_bfloat16;

  // The memory ceiling: 1 GiB device-to-device, bytes read + bytes written.
  {
    const size_t n = size_t{1} << 30;
    std::shared_ptr<DeviceBuffer<uint8_t>> src, dst;
    Time(ctx, "d2d copy (ceiling)", "1 GiB", 2.0 * n, 0, [&] {
      src = std::make_shared<DeviceBuffer<uint8_t>>(n);
      dst = std::make_shared<DeviceBuffer<uint8_t>>(n);
      FillRandom(reinterpret_cast<float*>(src->get()), n / 4, rng);
      return [&] { KAON_CHECK_CUDA(cudaMemcpyAsync(dst->get(), src->get(), n, cudaMemcpyDeviceToDevice)); };
    });
    const TimingResult& t = ctx.timings.back();
    if (t.median_ms > 0) ctx.copy_gbps = t.bytes / (t.median_ms * 1e-3) / 1e9;
  }

  {
    const int64_t rows = 8192, cols = 4096;
    std::shared_ptr<DeviceBuffer<bf16>> x, res, w, y;
    auto setup = [&] {
      x = std::make_shared<DeviceBuffer<bf16>>(rows * cols);
      res = std::make_shared<DeviceBuffer<bf16>>(rows * cols);
      y = std::make_shared<DeviceBuffer<bf16>>(rows * cols);
      w = std::make_shared<DeviceBuffer<bf16>>(cols);
      FillRandom(x->get(), x->size(), rng);
      FillRandom(res->get(), res->size(), rng);
      FillRandom(w->get(), w->size(), rng);
    };
    Time(ctx, "rmsnorm bf16", "[8192, 4096]", 2.0 * rows * cols * 2, 0, [&] {
      setup();
      return [&] { Ok(gpu::RmsNorm<bf16>(x->get(), w->get(), 1e-6f, rows, cols, y->get(), nullptr)); };
    });
    // In place on x and res: the values drift over the repeats but stay
    // finite (x is renormalised every call), which is all timing needs.
    Time(ctx, "fused_add_rmsnorm bf16", "[8192, 4096]", 4.0 * rows * cols * 2, 0, [&] {
      setup();
      return [&] { Ok(gpu::FusedAddRmsNorm<bf16>(x->get(), res->get(), w->get(), 1e-6f, rows, cols, nullptr)); };
    });
  }

  {
    const int64_t rows = 4096, cols = 14336;
    std::shared_ptr<DeviceBuffer<bf16>> gu, out;
    Time(ctx, "silu_and_mul bf16", "[4096, 2x14336]", 3.0 * rows * cols * 2, 0, [&] {
      gu = std::make_shared<DeviceBuffer<bf16>>(rows * 2 * cols);
      out = std::make_shared<DeviceBuffer<bf16>>(rows * cols);
      FillRandom(gu->get(), gu->size(), rng);
      return [&] { Ok(gpu::SiluAndMul<bf16>(gu->get(), rows, cols, out->get(), nullptr)); };
    });
  }

  {
    // Decode: 64 sequences x 2048 context, 32 query heads over 8 kv heads, d 128.
    const int64_t seqs = 64, ctx_len = 2048, h = 32, kvh = 8, d = 128, bs = 16;
    const int64_t blocks_per_seq = ctx_len / bs, num_blocks = seqs * blocks_per_seq;
    kernels::PagedKvShape shape{num_blocks, bs, kvh, d};
    std::shared_ptr<DeviceBuffer<bf16>> q, k, v, out;
    std::shared_ptr<DeviceBuffer<int32_t>> qsl, lens, table;
    kernels::AttentionMetadata meta;
    const double bytes = 2.0 * static_cast<double>(shape.layer_elems()) * 2 + 2.0 * seqs * h * d * 2;
    const double flops = 4.0 * seqs * h * ctx_len * d;
    Time(ctx, "paged_attention bf16 decode", "64 seqs x 2048 ctx, 32/8 heads, d=128", bytes, flops, [&] {
      q = std::make_shared<DeviceBuffer<bf16>>(seqs * h * d);
      out = std::make_shared<DeviceBuffer<bf16>>(seqs * h * d);
      k = std::make_shared<DeviceBuffer<bf16>>(shape.layer_elems());
      v = std::make_shared<DeviceBuffer<bf16>>(shape.layer_elems());
      FillRandom(q->get(), q->size(), rng);
      FillRandom(k->get(), k->size(), rng);
      FillRandom(v->get(), v->size(), rng);
      std::vector<int32_t> h_qsl(seqs + 1), h_lens(seqs, static_cast<int32_t>(ctx_len)), h_table(num_blocks);
      for (int64_t s = 0; s <= seqs; ++s) h_qsl[s] = static_cast<int32_t>(s);
      for (int64_t b = 0; b < num_blocks; ++b) h_table[b] = static_cast<int32_t>(b);
      for (size_t i = h_table.size(); i > 1; --i) std::swap(h_table[i - 1], h_table[rng.Int(0, i - 1)]);
      qsl = std::make_shared<DeviceBuffer<int32_t>>(h_qsl);
      lens = std::make_shared<DeviceBuffer<int32_t>>(h_lens);
      table = std::make_shared<DeviceBuffer<int32_t>>(h_table);
      meta.query_start_loc = qsl->get();
      meta.seq_lens = lens->get();
      meta.block_table = table->get();
      meta.num_seqs = seqs;
      meta.max_blocks_per_seq = blocks_per_seq;
      meta.max_seq_len = ctx_len;
      return [&] {
        Ok(gpu::PagedAttention<bf16>(q->get(), h * d, k->get(), v->get(), shape, meta, seqs, h, 0.0883883f,
                                     out->get(), nullptr));
      };
    });
  }

  {
    std::unique_ptr<gpu::GemmHandle> gemm;
    const kernels::KernelStatus st = gpu::GemmHandle::Create(gpu::GemmHandle::kDefaultWorkspaceBytes, &gemm);
    const int64_t n = 4096;
    std::shared_ptr<DeviceBuffer<bf16>> x, w, y;
    Time(ctx, "gemm bf16 (fp32 accumulate)", "4096^3", 3.0 * n * n * 2, 2.0 * n * n * n, [&] {
      Ok(st);
      x = std::make_shared<DeviceBuffer<bf16>>(n * n);
      w = std::make_shared<DeviceBuffer<bf16>>(n * n);
      y = std::make_shared<DeviceBuffer<bf16>>(n * n);
      FillRandom(x->get(), x->size(), rng);
      FillRandom(w->get(), w->size(), rng);
      return [&] { Ok(gemm->Linear<bf16>(x->get(), w->get(), nullptr, n, n, n, y->get(), nullptr)); };
    });
    x.reset();
    w.reset();
    y.reset();
    std::shared_ptr<DeviceBuffer<float>> xf, wf, yf;
    Time(ctx, "gemm f32 (no TF32)", "4096^3", 3.0 * n * n * 4, 2.0 * n * n * n, [&] {
      Ok(st);
      xf = std::make_shared<DeviceBuffer<float>>(n * n);
      wf = std::make_shared<DeviceBuffer<float>>(n * n);
      yf = std::make_shared<DeviceBuffer<float>>(n * n);
      FillRandom(xf->get(), xf->size(), rng);
      FillRandom(wf->get(), wf->size(), rng);
      return [&] { Ok(gemm->Linear<float>(xf->get(), wf->get(), nullptr, n, n, n, yf->get(), nullptr)); };
    });
  }

  {
    const int64_t rows = 256, vocab = 151936;
    std::shared_ptr<DeviceBuffer<bf16>> logits;
    std::shared_ptr<DeviceBuffer<int32_t>> ids;
    Time(ctx, "argmax bf16", "[256, 151936]", 2.0 * rows * vocab, 0, [&] {
      logits = std::make_shared<DeviceBuffer<bf16>>(rows * vocab);
      ids = std::make_shared<DeviceBuffer<int32_t>>(rows);
      FillRandom(logits->get(), logits->size(), rng);
      return [&] { Ok(gpu::ArgmaxRows<bf16>(logits->get(), rows, vocab, vocab, ids->get(), nullptr)); };
    });
  }
}

}  // namespace kaon::gpucheck
