// The device sampler (kernels/cuda/sample_rows) against its CPU twin
// (kernels/cpu/sample_rows): identical tokens, logprobs and top logprobs, bit
// for bit, >= 10,000 rows per parameter combination (fp32 logits), plus bf16
// and fp16 logits, a real vocabulary, and prompt logprobs. The twin is
// checked against the reference CpuSampler by
// tests/backend/sample_rows_twin_test.cc. GPU tests SKIP without a device;
// the argument checks run everywhere (they fail before any CUDA call).
#include <cstdint>
#include <cstring>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "gtest/gtest.h"
#include "kernels/cpu/sample_rows.h"
#include "kernels/cuda/sample_rows.h"
#include "server/backend/sampling_table.h"
#include "tests/backend/sample_rows_test_util.h"

namespace kaon {
namespace {

using sample_rows_testing::Batch;
using sample_rows_testing::Combo;
using sample_rows_testing::Combos;
using sample_rows_testing::LogitSource;
using sample_rows_testing::MakeBatch;
using sample_rows_testing::Rng;

bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define SKIP_WITHOUT_GPU() \
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device"

// Device bytes, freed on scope exit.
class DevBytes {
 public:
  explicit DevBytes(size_t n) { EXPECT_EQ(cudaMalloc(&p_, std::max<size_t>(n, 16)), cudaSuccess); }
  ~DevBytes() { cudaFree(p_); }
  DevBytes(const DevBytes&) = delete;
  DevBytes& operator=(const DevBytes&) = delete;
  std::byte* get() const { return static_cast<std::byte*>(p_); }
  void Put(const void* host, size_t n) { EXPECT_EQ(cudaMemcpy(p_, host, n, cudaMemcpyHostToDevice), cudaSuccess); }
  void Take(void* host, size_t n) const {
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(host, p_, n, cudaMemcpyDeviceToHost), cudaSuccess);
  }

 private:
  void* p_ = nullptr;
};

// Round to nearest even, as the device conversions do; inf and NaN pass.
uint16_t ToBf16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  if ((u & 0x7F800000u) == 0x7F800000u) return static_cast<uint16_t>((u >> 16) | ((u & 0xFFFFu) ? 0x40u : 0u));
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
float FromBf16Bits(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

enum class Dtype { kF32, kBf16, kF16 };

// One batch through the kernel and the twin; counts rows that differ.
int CompareBatch(const Combo& combo, Batch& b, Dtype dtype) {
  const int64_t rows = static_cast<int64_t>(b.rows.size()), vocab = b.vocab;
  const size_t cells = static_cast<size_t>(rows * vocab);
  // The twin reads what the kernel reads: the logits after the dtype's rounding.
  std::vector<uint16_t> narrow;
  if (dtype == Dtype::kBf16) {
    narrow.resize(cells);
    for (size_t i = 0; i < cells; ++i) {
      narrow[i] = ToBf16Bits(b.logits[i]);
      b.logits[i] = FromBf16Bits(narrow[i]);
    }
  } else if (dtype == Dtype::kF16) {
    narrow.resize(cells);
    for (size_t i = 0; i < cells; ++i) {
      const __half h = __float2half_rn(b.logits[i]);
      std::memcpy(&narrow[i], &h, sizeof(uint16_t));
      b.logits[i] = __half2float(h);
    }
  }
  EXPECT_TRUE(PackSamplingTable(b.rows, vocab, &b.packed).ok());
  const int32_t stride = b.packed.max_top_logprobs;
  const SampleOutputsLayout layout = LayoutSampleOutputs(rows, stride);

  // The twin.
  std::vector<std::byte> want_bytes(layout.bytes);
  std::vector<float> work(cells);
  const kernels::SampleOutputs want = ViewSampleOutputs(layout, want_bytes.data());
  const kernels::KernelStatus twin = kernels::cpu::SampleRows(
      b.logits.data(), rows, vocab, b.n, ViewSamplingTable(b.packed, b.packed.bytes.data()), work.data(), want);
  EXPECT_TRUE(twin.ok()) << twin.message();

  // The kernel.
  DevBytes table(b.packed.bytes.size()), outputs(layout.bytes),
      scratch(kernels::gpu::SampleRowsScratchBytes(rows, vocab)), logits(cells * sizeof(float));
  table.Put(b.packed.bytes.data(), b.packed.bytes.size());
  const kernels::SamplingTable dtable = ViewSamplingTable(b.packed, table.get());
  const kernels::SampleOutputs dout = ViewSampleOutputs(layout, outputs.get());
  kernels::KernelStatus st;
  if (dtype == Dtype::kF32) {
    logits.Put(b.logits.data(), cells * sizeof(float));
    st = kernels::gpu::SampleRows(reinterpret_cast<const float*>(logits.get()), rows, vocab, b.n, dtable,
                                  scratch.get(), dout, nullptr);
  } else {
    logits.Put(narrow.data(), cells * sizeof(uint16_t));
    st = dtype == Dtype::kBf16
             ? kernels::gpu::SampleRows(reinterpret_cast<const __nv_bfloat16*>(logits.get()), rows, vocab, b.n,
                                        dtable, scratch.get(), dout, nullptr)
             : kernels::gpu::SampleRows(reinterpret_cast<const __half*>(logits.get()), rows, vocab, b.n, dtable,
                                        scratch.get(), dout, nullptr);
  }
  EXPECT_TRUE(st.ok()) << st.message();
  std::vector<std::byte> got_bytes(layout.bytes);
  outputs.Take(got_bytes.data(), layout.bytes);
  const kernels::SampleOutputs got = ViewSampleOutputs(layout, got_bytes.data());

  int differing = 0;
  for (int64_t r = 0; r < rows; ++r) {
    bool same = got.tokens[r] == want.tokens[r] &&
                std::memcmp(&got.logprobs[r], &want.logprobs[r], sizeof(float)) == 0;
    for (int32_t j = 0; j < stride && same; ++j) {
      same = got.top_ids[r * stride + j] == want.top_ids[r * stride + j] &&
             std::memcmp(&got.top_logprobs[r * stride + j], &want.top_logprobs[r * stride + j], sizeof(float)) == 0;
    }
    if (!same && ++differing <= 5) {
      ADD_FAILURE() << combo.name << " row " << r << ": kernel " << got.tokens[r] << " (" << got.logprobs[r]
                    << "), twin " << want.tokens[r] << " (" << want.logprobs[r] << ")";
    }
  }
  return differing;
}

int Compare(const Combo& combo, int32_t vocab, int32_t n, int rows, Dtype dtype, uint64_t seed) {
  const LogitSource source(vocab);
  Rng rng(seed);
  Batch b;
  int differing = 0;
  for (int done = 0; done < rows; done += 1024) {
    MakeBatch(rng, source, n, combo.make, std::min(1024, rows - done), &b);
    differing += CompareBatch(combo, b, dtype);
  }
  return differing;
}

class KernelVsTwin : public ::testing::TestWithParam<size_t> {};

TEST_P(KernelVsTwin, IdenticalOutputsFp32) {
  SKIP_WITHOUT_GPU();
  const Combo& combo = Combos()[GetParam()];
  EXPECT_EQ(Compare(combo, 4096, 4096, 10240, Dtype::kF32, 500 + GetParam()), 0) << combo.name;
  EXPECT_EQ(Compare(combo, 4096, 4096 - 97, 1024, Dtype::kF32, 600 + GetParam()), 0) << combo.name;
}

TEST_P(KernelVsTwin, IdenticalOutputsBf16AndFp16) {
  SKIP_WITHOUT_GPU();
  const Combo& combo = Combos()[GetParam()];
  EXPECT_EQ(Compare(combo, 4096, 4096, 2048, Dtype::kBf16, 700 + GetParam()), 0) << combo.name;
  EXPECT_EQ(Compare(combo, 4096, 4096, 512, Dtype::kF16, 800 + GetParam()), 0) << combo.name;
}

TEST_P(KernelVsTwin, IdenticalOutputsAtALlamaVocabulary) {
  SKIP_WITHOUT_GPU();
  const Combo& combo = Combos()[GetParam()];
  EXPECT_EQ(Compare(combo, 128256, 128256, 32, Dtype::kF32, 900 + GetParam()), 0) << combo.name;
  EXPECT_EQ(Compare(combo, 128256, 128000, 32, Dtype::kBf16, 950 + GetParam()), 0) << combo.name;
}

INSTANTIATE_TEST_SUITE_P(Combos, KernelVsTwin, ::testing::Range<size_t>(0, Combos().size()),
                         [](const auto& info) { return std::string(Combos()[info.param].name); });

TEST(CudaLogprobRow, MatchesTheTwin) {
  SKIP_WITHOUT_GPU();
  for (int32_t vocab : {7, 4096, 128256}) {
    const LogitSource source(vocab);
    Rng rng(vocab);
    std::vector<float> row(vocab);
    DevBytes drow(vocab * sizeof(float)), dout(sizeof(float) * 64);
    for (int i = 0; i < 50; ++i) {
      source.Fill(rng, row.data());
      const int32_t token = rng.Below(vocab), k = rng.Below(21);
      float want_lp = 0.0f;
      std::vector<int32_t> want_ids(k + 1);
      std::vector<float> want_top(k + 1);
      ASSERT_TRUE(
          kernels::cpu::LogprobRow(row.data(), vocab, token, k, &want_lp, want_ids.data(), want_top.data()).ok());
      drow.Put(row.data(), vocab * sizeof(float));
      float* lp = reinterpret_cast<float*>(dout.get());
      int32_t* ids = reinterpret_cast<int32_t*>(dout.get() + 64);
      float* top = reinterpret_cast<float*>(dout.get() + 160);
      ASSERT_TRUE(kernels::gpu::LogprobRow(reinterpret_cast<const float*>(drow.get()), vocab, token, k, nullptr, lp,
                                           ids, top, nullptr)
                      .ok());
      std::vector<std::byte> got(256);
      dout.Take(got.data(), 256);
      float got_lp;
      std::memcpy(&got_lp, got.data(), sizeof(float));
      EXPECT_EQ(std::memcmp(&got_lp, &want_lp, sizeof(float)), 0) << got_lp << " vs " << want_lp;
      for (int32_t j = 0; j < k; ++j) {
        int32_t id;
        float v;
        std::memcpy(&id, got.data() + 64 + 4 * j, 4);
        std::memcpy(&v, got.data() + 160 + 4 * j, 4);
        EXPECT_EQ(id, want_ids[j]) << "vocab " << vocab << " top " << j;
        EXPECT_EQ(std::memcmp(&v, &want_top[j], sizeof(float)), 0) << v << " vs " << want_top[j];
      }
    }
  }
}

// Bad arguments are rejected before any CUDA call, so these run without a GPU.
TEST(CudaSampleRows, RejectsBadArguments) {
  std::vector<SamplingRow> rows(2);
  PackedSamplingTable p;
  ASSERT_TRUE(PackSamplingTable(rows, 8, &p).ok());
  const kernels::SamplingTable t = ViewSamplingTable(p, p.bytes.data());
  alignas(16) float logits[16] = {};
  alignas(16) std::byte scratch[64];
  int32_t tokens[2], ids[4];
  float lps[2], top[4];
  const kernels::SampleOutputs out{tokens, lps, ids, top, 2};
  using kernels::gpu::SampleRows;
  EXPECT_FALSE(SampleRows(logits, 2, 8, 9, t, scratch, out, nullptr).ok());            // sampleable > vocab
  EXPECT_FALSE(SampleRows(logits, 2, 8, 0, t, scratch, out, nullptr).ok());            // sampleable 0
  EXPECT_FALSE(SampleRows(logits, 2, 0, 0, t, scratch, out, nullptr).ok());            // empty vocab
  EXPECT_FALSE(SampleRows(logits, 2, int64_t{1} << 20, 8, t, scratch, out, nullptr).ok());  // vocab too large
  EXPECT_FALSE(SampleRows(logits, 1, 8, 8, t, scratch, out, nullptr).ok());            // rows != table rows
  EXPECT_FALSE(SampleRows(logits, -1, 8, 8, t, scratch, out, nullptr).ok());
  EXPECT_FALSE(SampleRows(static_cast<const float*>(nullptr), 2, 8, 8, t, scratch, out, nullptr).ok());
  EXPECT_FALSE(SampleRows(logits, 2, 8, 8, t, nullptr, out, nullptr).ok());
  kernels::SampleOutputs bad = out;
  bad.top_stride = kernels::gpu::kMaxSampleRowsTopLogprobs + 1;
  EXPECT_FALSE(SampleRows(logits, 2, 8, 8, t, scratch, bad, nullptr).ok());
  bad = out;
  bad.top_ids = nullptr;
  EXPECT_FALSE(SampleRows(logits, 2, 8, 8, t, scratch, bad, nullptr).ok());
  bad = out;
  bad.tokens = reinterpret_cast<int32_t*>(reinterpret_cast<std::byte*>(tokens) + 1);
  EXPECT_FALSE(SampleRows(logits, 2, 8, 8, t, scratch, bad, nullptr).ok());
  EXPECT_FALSE(SampleRows(reinterpret_cast<const float*>(reinterpret_cast<const std::byte*>(logits) + 2), 2, 8, 8,
                          t, scratch, out, nullptr)
                   .ok());
  const __nv_bfloat16* bf = nullptr;
  EXPECT_FALSE(SampleRows(bf, 2, 8, 8, t, scratch, out, nullptr).ok());

  using kernels::gpu::LogprobRow;
  float lp;
  EXPECT_FALSE(LogprobRow(logits, 8, 8, 0, nullptr, &lp, ids, top, nullptr).ok());   // token past vocab
  EXPECT_FALSE(LogprobRow(logits, 8, -1, 0, nullptr, &lp, ids, top, nullptr).ok());
  EXPECT_FALSE(LogprobRow(logits, 8, 0, -1, nullptr, &lp, ids, top, nullptr).ok());  // negative k
  EXPECT_FALSE(LogprobRow(logits, 8, 0, kernels::gpu::kMaxSampleRowsTopLogprobs + 1, nullptr, &lp, ids, top,
                          nullptr)
                   .ok());
  EXPECT_FALSE(LogprobRow(logits, 8, 0, 2, nullptr, &lp, nullptr, nullptr, nullptr).ok());
  EXPECT_FALSE(LogprobRow(logits, 0, 0, 0, nullptr, &lp, ids, top, nullptr).ok());
  EXPECT_FALSE(LogprobRow(static_cast<const __half*>(nullptr), 8, 0, 0, nullptr, &lp, ids, top, nullptr).ok());
}

TEST(CudaSampleRows, ScratchBytesCoverWorkAndBitmap) {
  EXPECT_EQ(kernels::gpu::SampleRowsScratchBytes(0, 4096), 0u);
  EXPECT_GE(kernels::gpu::SampleRowsScratchBytes(3, 4096), 3u * (4096 * 4 + 128 * 4));
  EXPECT_EQ(kernels::gpu::SampleRowsScratchBytes(2, 100) % 256, 0u);
}

}  // namespace
}  // namespace kaon
