#include "server/backend/cuda/host_weights.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "server/common/status.h"

namespace kaon::layers {

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
