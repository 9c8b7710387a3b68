#include "server/backend/cpu/linear.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "server/common/status.h"

namespace kaon::layers {

void UseSingleThreadedBlas() { openblas_set_num_threads(1); }

namespace {

// y[:, n0:n1] for output columns [n0, n1); y keeps its full row stride.
void LinearColumns(const float* x, const float* w, const float* bias, int64_t m, int64_t in,
                   int64_t out, int64_t n0, int64_t n1, float* y) {
  const int n = static_cast<int>(n1 - n0);
  const float beta = bias ? 1.0f : 0.0f;
  if (bias) {
    for (int64_t i = 0; i < m; ++i) std::memcpy(y + i * out + n0, bias + n0, sizeof(float) * n);
  }
  if (m == 1) {
    // Decode steps of one sequence: a matrix-vector product skips GEMM's
    // packing of W, which costs more than the product at this size.
    cblas_sgemv(CblasRowMajor, CblasNoTrans, n, static_cast<int>(in), 1.0f, w + n0 * in,
                static_cast<int>(in), x, 1, beta, y + n0, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), n, static_cast<int>(in), 1.0f,
              x, static_cast<int>(in), w + n0 * in, static_cast<int>(in), beta, y + n0,
              static_cast<int>(out));
}

}  // namespace

void Linear::Forward(const float* x, int64_t m, float* y, kernels::cpu::ThreadPool* pool) const {
  if (m == 0) return;
  // Below this many multiply-adds a thread hand-off costs more than it saves.
  constexpr int64_t kMinParallelWork = int64_t{1} << 18;
  constexpr int64_t kColumnGrain = 16;  // keeps each thread's slice SIMD-friendly
  const int64_t chunks = (out_ + kColumnGrain - 1) / kColumnGrain;
  if (pool == nullptr || pool->num_threads() == 1 || m * out_ * in_ < kMinParallelWork || chunks < 2) {
    LinearColumns(x, weight_.data(), bias(), m, in_, out_, 0, out_, y);
    return;
  }
  pool->ParallelFor(chunks, [&](int64_t c0, int64_t c1, int) {
    LinearColumns(x, weight_.data(), bias(), m, in_, out_, c0 * kColumnGrain,
                  std::min(out_, c1 * kColumnGrain), y);
  });
}

Shard ShardOf(int64_t total, TpInfo tp) {
  KAON_CHECK(tp.size > 0 && total % tp.size == 0)
      << total << " does not split evenly over " << tp.size << " tensor-parallel ranks";
  const int64_t per = total / tp.size;
  return {tp.rank * per, (tp.rank + 1) * per};
}

absl::StatusOr<std::vector<float>> LoadRows(const WeightStore& store, const std::string& name,
                                            const std::vector<int64_t>& shape, int64_t begin,
                                            int64_t end) {
  KAON_ASSIGN_OR_RETURN(TensorView t, store.Get(name, shape));
  const int64_t row = shape.size() >= 2 ? t.numel() / shape[0] : 1;
  std::vector<float> out((end - begin) * row);
  ConvertToF32(t, static_cast<size_t>(begin * row), out.size(), out.data());
  return out;
}

absl::StatusOr<std::vector<float>> LoadTensor(const WeightStore& store, const std::string& name,
                                              const std::vector<int64_t>& shape) {
  KAON_ASSIGN_OR_RETURN(TensorView t, store.Get(name, shape));
  std::vector<float> out(t.numel());
  ConvertToF32(t, 0, out.size(), out.data());
  return out;
}

namespace {

absl::StatusOr<std::vector<float>> LoadBiasRows(const WeightStore& store, const std::string& name,
                                                int64_t out, Shard rows, Bias bias) {
  if (bias == Bias::kNone) {
    if (store.Has(name + ".bias")) {
      return absl::UnimplementedError(absl::StrCat("tensor ", name,
                                                   ".bias is present but the config does not enable it"));
    }
    return std::vector<float>();
  }
  return LoadRows(store, name + ".bias", {out}, rows.begin, rows.end);
}

}  // namespace

absl::StatusOr<Linear> LoadColumnParallel(const WeightStore& store, const std::string& name,
                                          int64_t out, int64_t in, Bias bias, TpInfo tp) {
  return LoadFusedColumnParallel(store, {{name, out}}, in, bias, tp);
}

absl::StatusOr<Linear> LoadFusedColumnParallel(const WeightStore& store,
                                               const std::vector<FusedPart>& parts, int64_t in,
                                               Bias bias, TpInfo tp) {
  std::vector<float> weight, b;
  int64_t out_local = 0;
  for (const FusedPart& part : parts) {
    const Shard rows = ShardOf(part.out, tp);
    KAON_ASSIGN_OR_RETURN(std::vector<float> w,
                          LoadRows(store, part.name + ".weight", {part.out, in}, rows.begin, rows.end));
    weight.insert(weight.end(), w.begin(), w.end());
    KAON_ASSIGN_OR_RETURN(std::vector<float> pb, LoadBiasRows(store, part.name, part.out, rows, bias));
    b.insert(b.end(), pb.begin(), pb.end());
    out_local += rows.size();
  }
  return Linear(out_local, in, std::move(weight), std::move(b));
}

absl::StatusOr<Linear> LoadRowParallel(const WeightStore& store, const std::string& name,
                                       int64_t out, int64_t in, Bias bias, TpInfo tp) {
  const Shard cols = ShardOf(in, tp);
  KAON_ASSIGN_OR_RETURN(std::vector<float> full, LoadTensor(store, name + ".weight", {out, in}));
  std::vector<float> weight(out * cols.size());
  for (int64_t r = 0; r < out; ++r) {
    std::memcpy(weight.data() + r * cols.size(), full.data() + r * in + cols.begin,
                sizeof(float) * cols.size());
  }
  KAON_ASSIGN_OR_RETURN(std::vector<float> b, LoadBiasRows(store, name, out, {0, out}, bias));
  if (tp.rank != 0) b.assign(b.size(), 0.0f);
  return Linear(out, cols.size(), std::move(weight), std::move(b));
}

}  // namespace kaon::layers
