// Each CUDA kernel against its CPU twin (fp32, small shapes, random inputs).
// The GPU tests SKIP where no GPU is present (CI); the argument-validation
// tests run everywhere, since entry points reject bad arguments before any
// CUDA call. The thorough per-dtype check against fp64 references is
// tests/gpu/ (kaon_gpu_check, run by tests/gpu/check.sh on the GPU machine).
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "gtest/gtest.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/gemm_ref.h"
#include "kernels/cpu/index_ops.h"
#include "kernels/cpu/kv_cache_write.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/sampling.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/convert.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/index_ops.h"
#include "kernels/cuda/kv_cache_write.h"
#include "kernels/cuda/paged_attention.h"
#include "kernels/cuda/rmsnorm.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/sampling.h"

namespace kaon::kernels {
namespace {

bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define SKIP_WITHOUT_GPU() \
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device"

std::vector<float> Random(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A device copy of a host vector; Get() copies back. Freed on scope exit.
template <typename T>
class Dev {
 public:
  explicit Dev(const std::vector<T>& h) : n_(h.size()) {
    EXPECT_EQ(cudaMalloc(&p_, std::max<size_t>(1, n_) * sizeof(T)), cudaSuccess);
    if (n_) {
      EXPECT_EQ(cudaMemcpy(p_, h.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
    }
  }
  explicit Dev(size_t n) : Dev(std::vector<T>(n)) { EXPECT_EQ(cudaMemset(p_, 0xFF, n * sizeof(T)), cudaSuccess); }
  ~Dev() { cudaFree(p_); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  T* get() { return p_; }
  std::vector<T> Get() {
    std::vector<T> h(n_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    if (n_) {
      EXPECT_EQ(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    }
    return h;
  }

 private:
  T* p_ = nullptr;
  size_t n_;
};

void ExpectClose(const std::vector<float>& gpu, const std::vector<float>& cpu, float tol) {
  ASSERT_EQ(gpu.size(), cpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) ASSERT_NEAR(gpu[i], cpu[i], tol * (1 + std::fabs(cpu[i]))) << "at " << i;
}

// ------------------------------------------------------------ validation (no GPU needed)

TEST(CudaKernelArgs, RejectedBeforeAnyCudaCall) {
  // Fake pointers: a rejected call never dereferences them or launches.
  auto* f = reinterpret_cast<float*>(uintptr_t{0x1000});
  auto* i32 = reinterpret_cast<int32_t*>(uintptr_t{0x2000});
  auto* i64 = reinterpret_cast<int64_t*>(uintptr_t{0x3000});
  EXPECT_FALSE(gpu::RmsNorm<float>(f, f, 1e-6f, 4, 0, f, nullptr).ok());
  EXPECT_FALSE(gpu::RmsNorm<float>(nullptr, f, 1e-6f, 4, 8, f, nullptr).ok());
  EXPECT_FALSE(gpu::RmsNorm<float>(f + 0, f, 1e-6f, -1, 8, f, nullptr).ok());
  const auto misaligned = reinterpret_cast<float*>(uintptr_t{0x1002});
  EXPECT_FALSE(gpu::RmsNorm<float>(misaligned, f, 1e-6f, 4, 8, f, nullptr).ok());
  EXPECT_FALSE(gpu::FusedAddRmsNorm<float>(f, f, f, 1e-6f, 4, 8, nullptr).ok());  // x == residual
  EXPECT_FALSE(gpu::RmsNormHeads<float>(f, 15, 2, 2, 8, f, 1e-6f, nullptr).ok());   // stride < heads
  EXPECT_FALSE(gpu::EmbeddingLookup<float>(f, 0, 8, 0, 10, i32, 3, f, nullptr, nullptr).ok());
  EXPECT_FALSE(gpu::ApplyRotaryNeox<float>(f, 8, f, 8, i32, 2, 1, 1, 7, f, f, 16, nullptr).ok());  // odd dim
  PagedKvShape shape{4, 16, 2, 64};
  EXPECT_FALSE(gpu::WriteKvCache<float>(f, 64, f, 128, i64, 3, shape, f, f, nullptr).ok());  // stride < 128
  AttentionMetadata meta;
  meta.query_start_loc = i32;
  meta.seq_lens = i32;
  meta.block_table = i32;
  meta.num_seqs = 1;
  meta.max_blocks_per_seq = 1;
  EXPECT_FALSE(gpu::PagedAttention<float>(f, 6 * 64, f, f, shape, meta, 1, 3, 0.1f, f, nullptr).ok());  // 3 % 2
  PagedKvShape wide{4, 16, 1, 512};
  EXPECT_FALSE(gpu::PagedAttention<float>(f, 512, f, f, wide, meta, 1, 1, 0.1f, f, nullptr).ok());  // d > 256
  AttentionMetadata no_meta;
  EXPECT_FALSE(gpu::PagedAttention<float>(f, 128, f, f, shape, no_meta, 1, 2, 0.1f, f, nullptr).ok());
  EXPECT_FALSE(gpu::SiluAndMul<float>(f, 2, 0, f, nullptr).ok());
  EXPECT_FALSE(gpu::GatherRows<float>(f, 4, 0, i32, 2, f, nullptr).ok());
  EXPECT_FALSE(gpu::GatherRows<float>(nullptr, 4, 8, i32, 2, f, nullptr).ok());
  EXPECT_FALSE(gpu::ApplyTableUpdates(nullptr, 3, i32, 16, nullptr).ok());
  EXPECT_FALSE(gpu::ApplyTableUpdates(i32, -1, i32, 16, nullptr).ok());
  EXPECT_FALSE(gpu::ArgmaxRows<float>(f, 2, 10, 11, i32, nullptr).ok());  // sampleable > vocab
  EXPECT_FALSE((gpu::Convert<float, __nv_bfloat16>(f, -1, reinterpret_cast<__nv_bfloat16*>(f), nullptr).ok()));
  const KernelStatus st = gpu::RmsNorm<float>(f, f, 1e-6f, 4, 0, f, nullptr);
  EXPECT_NE(st.message().find("rmsnorm"), std::string::npos) << st.message();
}

TEST(CudaKernelArgs, EmptyBatchesAreNoOps) {
  auto* f = reinterpret_cast<float*>(uintptr_t{0x1000});
  auto* i32 = reinterpret_cast<int32_t*>(uintptr_t{0x2000});
  EXPECT_TRUE(gpu::RmsNorm<float>(f, f, 1e-6f, 0, 8, f, nullptr).ok());
  EXPECT_TRUE(gpu::SiluAndMul<float>(f, 0, 8, f, nullptr).ok());
  EXPECT_TRUE(gpu::EmbeddingLookup<float>(f, 4, 8, 0, 4, i32, 0, f, nullptr, nullptr).ok());
}

TEST(CudaIndexOps, GatherRowsAndTableUpdatesMatchTheCpuTwins) {
  SKIP_WITHOUT_GPU();
  const int64_t x_rows = 9, cols = 37;
  const std::vector<float> x = Random(x_rows * cols, 21);
  const std::vector<int32_t> rows = {8, 0, 3, 3, -1, 9, 5};  // repeats, and two outside (zero rows)
  const int64_t n = static_cast<int64_t>(rows.size());
  std::vector<float> want(n * cols);
  ASSERT_TRUE(cpu::GatherRows(x.data(), x_rows, cols, rows.data(), n, want.data()).ok());
  Dev<float> dx(x), dout(static_cast<size_t>(n * cols));
  Dev<int32_t> drows(rows);
  ASSERT_TRUE(gpu::GatherRows<float>(dx.get(), x_rows, cols, drows.get(), n, dout.get(), nullptr).ok());
  EXPECT_EQ(dout.Get(), want);

  std::vector<int32_t> table(64, 3), updates;
  for (int32_t i = 0; i < 20; ++i) updates.insert(updates.end(), {(i * 7) % 64, 100 + i});
  updates.insert(updates.end(), {64, 1, -3, 2});  // outside: skipped
  std::vector<int32_t> want_table = table;
  const int64_t m = static_cast<int64_t>(updates.size() / 2);
  ASSERT_TRUE(cpu::ApplyTableUpdates(updates.data(), m, want_table.data(), 64).ok());
  Dev<int32_t> dtable(table), dupdates(updates);
  ASSERT_TRUE(gpu::ApplyTableUpdates(dupdates.get(), m, dtable.get(), 64, nullptr).ok());
  EXPECT_EQ(dtable.Get(), want_table);
}

TEST(CudaGemm, CreateFailsCleanlyWithoutGpu) {
  if (HaveGpu()) GTEST_SKIP() << "a GPU is present";
  std::unique_ptr<gpu::GemmHandle> h;
  // cuBLASLt may or may not create a handle with no device; either way no
  // crash, and a failure is a status.
  const KernelStatus st = gpu::GemmHandle::Create(1 << 20, &h);
  EXPECT_EQ(st.ok(), h != nullptr) << st.message();
}

// ------------------------------------------------------------ GPU vs CPU twin (fp32)

TEST(CudaKernels, RmsNormMatchesCpuTwin) {
  SKIP_WITHOUT_GPU();
  for (int64_t cols : {1, 8, 64, 1001, 4096, 5120}) {
    const int64_t rows = 33;
    auto x = Random(rows * cols, cols), w = Random(cols, cols + 1), res = Random(rows * cols, cols + 2);
    std::vector<float> cpu(rows * cols);
    ASSERT_TRUE(cpu::RmsNorm(x.data(), w.data(), 1e-6f, rows, cols, cpu.data()).ok());
    Dev<float> dx(x), dw(w), dy(x.size());
    ASSERT_TRUE(gpu::RmsNorm<float>(dx.get(), dw.get(), 1e-6f, rows, cols, dy.get(), nullptr).ok());
    ExpectClose(dy.Get(), cpu, 1e-5f);

    std::vector<float> cx = x, cres = res;
    ASSERT_TRUE(cpu::FusedAddRmsNorm(cx.data(), cres.data(), w.data(), 1e-6f, rows, cols).ok());
    Dev<float> gx(x), gres(res);
    ASSERT_TRUE(gpu::FusedAddRmsNorm<float>(gx.get(), gres.get(), dw.get(), 1e-6f, rows, cols, nullptr).ok());
    ExpectClose(gx.Get(), cx, 1e-5f);
    ExpectClose(gres.Get(), cres, 1e-6f);
  }
}

TEST(CudaKernels, RmsNormHeadsMatchesCpuPerHead) {
  SKIP_WITHOUT_GPU();
  const int64_t tokens = 5, h = 4, kvh = 2, d = 64, width = (h + 2 * kvh) * d;
  auto qkv = Random(tokens * width, 7), wq = Random(d, 8), wk = Random(d, 9);
  std::vector<float> cpu = qkv;
  for (int64_t t = 0; t < tokens; ++t) {  // as models/decoder.cc does it
    ASSERT_TRUE(cpu::RmsNorm(&cpu[t * width], wq.data(), 1e-6f, h, d, &cpu[t * width]).ok());
    ASSERT_TRUE(cpu::RmsNorm(&cpu[t * width + h * d], wk.data(), 1e-6f, kvh, d, &cpu[t * width + h * d]).ok());
  }
  Dev<float> g(qkv), gq(wq), gk(wk);
  ASSERT_TRUE(gpu::RmsNormHeads<float>(g.get(), width, tokens, h, d, gq.get(), 1e-6f, nullptr).ok());
  ASSERT_TRUE(gpu::RmsNormHeads<float>(g.get() + h * d, width, tokens, kvh, d, gk.get(), 1e-6f, nullptr).ok());
  ExpectClose(g.Get(), cpu, 1e-5f);  // v columns compare exactly (untouched)
}

TEST(CudaKernels, EmbeddingMatchesCpuTwin) {
  SKIP_WITHOUT_GPU();
  const int64_t vocab = 100, hidden = 33, begin = 40, shard = 30;
  auto table = Random(shard * hidden, 1);
  std::vector<int32_t> ids = {0, 39, 40, 41, 69, 70, 99, 55};
  std::vector<float> cpu(ids.size() * hidden);
  ASSERT_TRUE(cpu::EmbeddingLookup(table.data(), shard, hidden, begin, vocab, ids.data(), ids.size(), cpu.data()).ok());
  Dev<float> dt(table), out(cpu.size());
  Dev<int32_t> di(ids), flag(std::vector<int32_t>{0});
  ASSERT_TRUE(gpu::EmbeddingLookup<float>(dt.get(), shard, hidden, begin, vocab, di.get(), ids.size(), out.get(),
                                          flag.get(), nullptr).ok());
  EXPECT_EQ(out.Get(), cpu);
  EXPECT_EQ(flag.Get()[0], 0);
  // An id outside the vocabulary: a zero row and the flag, no fault.
  Dev<int32_t> bad(std::vector<int32_t>{5, 1000});
  ASSERT_TRUE(gpu::EmbeddingLookup<float>(dt.get(), shard, hidden, begin, vocab, bad.get(), 2, out.get(), flag.get(),
                                          nullptr).ok());
  EXPECT_EQ(flag.Get()[0], 1);
}

TEST(CudaKernels, RopeMatchesCpuTwin) {
  SKIP_WITHOUT_GPU();
  const int64_t tokens = 7, h = 4, kvh = 2, d = 32, half = d / 2, max_pos = 64, width = (h + 2 * kvh) * d;
  std::vector<double> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = std::pow(10000.0, -2.0 * i / d);
  std::vector<float> cos_c(max_pos * half), sin_c(max_pos * half);
  cpu::BuildRopeCache(inv_freq.data(), half, max_pos, cos_c.data(), sin_c.data());
  std::vector<int32_t> pos = {0, 1, 2, 17, 63, 5, 40};
  auto qkv = Random(tokens * width, 3);
  std::vector<float> cpu = qkv;
  ASSERT_TRUE(cpu::ApplyRotaryNeox(cpu.data(), width, cpu.data() + h * d, width, pos.data(), tokens, h, kvh, d,
                                   cos_c.data(), sin_c.data(), max_pos).ok());
  Dev<float> g(qkv), dc(cos_c), ds(sin_c);
  Dev<int32_t> dp(pos);
  ASSERT_TRUE(gpu::ApplyRotaryNeox<float>(g.get(), width, g.get() + h * d, width, dp.get(), tokens, h, kvh, d, dc.get(),
                                          ds.get(), max_pos, nullptr).ok());
  ExpectClose(g.Get(), cpu, 1e-6f);
}

TEST(CudaKernels, KvWriteAndPagedAttentionMatchCpuTwins) {
  SKIP_WITHOUT_GPU();
  // Two sequences: a 20-token prefill chunk over 13 cached tokens, and a decode
  // at position 16 (one past a block); block_size 16, GQA 2, scattered blocks.
  const int64_t h = 4, kvh = 2, d = 16, bs = 16, width = (h + 2 * kvh) * d;
  PagedKvShape shape{8, bs, kvh, d};
  std::vector<int32_t> qsl = {0, 20, 21}, lens = {33, 17};
  std::vector<int32_t> table = {5, 2, 7, 3, 6, 0};  // 3 blocks per sequence
  const int64_t tokens = 21;
  // Fill the cached prefix directly, then write this step's K/V via the kernel.
  auto k_cache = Random(shape.layer_elems(), 11), v_cache = Random(shape.layer_elems(), 12);
  auto qkv = Random(tokens * width, 13);
  std::vector<int64_t> slots(tokens);
  for (int64_t i = 0; i < 20; ++i) slots[i] = table[(13 + i) / bs] * bs + (13 + i) % bs;
  slots[20] = table[3 + 16 / bs] * bs + 16 % bs;
  std::vector<float> ck = k_cache, cv = v_cache;
  ASSERT_TRUE(cpu::WriteKvCache(qkv.data() + h * d, width, qkv.data() + (h + kvh) * d, width, slots.data(), tokens,
                                shape, ck.data(), cv.data()).ok());
  Dev<float> g(qkv), gk(k_cache), gv(v_cache), out(tokens * h * d);
  Dev<int64_t> gs(slots);
  ASSERT_TRUE(gpu::WriteKvCache<float>(g.get() + h * d, width, g.get() + (h + kvh) * d, width, gs.get(), tokens, shape,
                                       gk.get(), gv.get(), nullptr).ok());
  EXPECT_EQ(gk.Get(), ck);
  EXPECT_EQ(gv.Get(), cv);

  AttentionMetadata meta;
  meta.query_start_loc = qsl.data();
  meta.seq_lens = lens.data();
  meta.block_table = table.data();
  meta.num_seqs = 2;
  meta.max_blocks_per_seq = 3;
  meta.max_seq_len = 33;
  std::vector<float> cpu(tokens * h * d);
  const float scale = 0.25f;
  ASSERT_TRUE(cpu::PagedAttention(qkv.data(), width, ck.data(), cv.data(), shape, meta, h, scale, cpu.data(),
                                  nullptr).ok());
  Dev<int32_t> dq(qsl), dl(lens), dt(table);
  AttentionMetadata dmeta = meta;
  dmeta.query_start_loc = dq.get();
  dmeta.seq_lens = dl.get();
  dmeta.block_table = dt.get();
  ASSERT_TRUE(gpu::PagedAttention<float>(g.get(), width, gk.get(), gv.get(), shape, dmeta, tokens, h, scale, out.get(),
                                         nullptr).ok());
  ExpectClose(out.Get(), cpu, 1e-5f);
}

TEST(CudaKernels, SiluAndMulMatchesCpuTwin) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 9, cols = 77;
  auto gu = Random(rows * 2 * cols, 21, 3.0f);
  std::vector<float> cpu(rows * cols);
  ASSERT_TRUE(cpu::SiluAndMul(gu.data(), rows, cols, cpu.data()).ok());
  Dev<float> g(gu), out(cpu.size());
  ASSERT_TRUE(gpu::SiluAndMul<float>(g.get(), rows, cols, out.get(), nullptr).ok());
  ExpectClose(out.Get(), cpu, 1e-5f);
}

TEST(CudaKernels, GemmFp32MatchesReference) {
  SKIP_WITHOUT_GPU();
  std::unique_ptr<gpu::GemmHandle> gemm;
  ASSERT_TRUE(gpu::GemmHandle::Create(gpu::GemmHandle::kDefaultWorkspaceBytes, &gemm).ok());
  const int64_t m = 13, n = 70, k = 129;
  auto x = Random(m * k, 31), w = Random(n * k, 32), b = Random(n, 33);
  std::vector<float> ref(m * n);
  cpu::LinearRef(x.data(), w.data(), b.data(), m, n, k, ref.data());
  Dev<float> dx(x), dw(w), db(b), dy(ref.size());
  ASSERT_TRUE(gemm->Linear<float>(dx.get(), dw.get(), db.get(), m, n, k, dy.get(), nullptr).ok());
  ExpectClose(dy.Get(), ref, 1e-5f);  // no TF32: fp32 FMA only
}

TEST(CudaKernels, ArgmaxMatchesCpuTwin) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 4, vocab = 5000, sampleable = 4990;
  auto logits = Random(rows * vocab, 41);
  logits[1 * vocab + 100] = logits[1 * vocab + 3000] = 9.0f;  // tie: lowest id
  logits[2 * vocab + 4995] = 50.0f;                           // past sampleable: ignored
  Dev<float> g(logits);
  Dev<int32_t> ids(rows);
  ASSERT_TRUE(gpu::ArgmaxRows<float>(g.get(), rows, vocab, sampleable, ids.get(), nullptr).ok());
  const auto got = ids.Get();
  for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(got[r], cpu::Argmax(&logits[r * vocab], sampleable)) << r;
  EXPECT_EQ(got[1], 100);
}

TEST(CudaKernels, ConvertRoundTripsBf16) {
  SKIP_WITHOUT_GPU();
  auto x = Random(1001, 51);
  Dev<float> g(x), back(x.size());
  Dev<__nv_bfloat16> b(x.size());
  ASSERT_TRUE((gpu::Convert<float, __nv_bfloat16>(g.get(), x.size(), b.get(), nullptr).ok()));
  ASSERT_TRUE((gpu::Convert<__nv_bfloat16, float>(b.get(), x.size(), back.get(), nullptr).ok()));
  const auto got = back.Get();
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(got[i], __bfloat162float(__float2bfloat16_rn(x[i]))) << i;
}

}  // namespace
}  // namespace kaon::kernels
