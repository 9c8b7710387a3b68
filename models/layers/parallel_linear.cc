#include "models/layers/parallel_linear.h"

#include "absl/strings/str_cat.h"
#include "server/common/status.h"

namespace kaon::layers {

Shard ShardOf(int64_t total, TpInfo tp) {
  KAON_CHECK(tp.size > 0 && total % tp.size == 0)
      << total << " does not split evenly over " << tp.size << " tensor-parallel ranks";
  const int64_t per = total / tp.size;
  return {tp.rank * per, (tp.rank + 1) * per};
}

namespace {

absl::Status RefuseUnexpectedBias(const WeightStore& store, const std::string& name) {
  if (store.Has(name + ".bias")) {
    return absl::UnimplementedError(absl::StrCat("tensor ", name, ".bias is present but the config does not enable it"));
  }
  return absl::OkStatus();
}

WeightPart Part(const std::string& name, std::vector<int64_t> shape, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  return WeightPart{name, std::move(shape), r0, r1, c0, c1, false};
}

}  // namespace

absl::StatusOr<LinearWeights> LoadColumnParallel(Backend& backend, const WeightStore& store,
                                                 const std::vector<FusedPart>& parts, int64_t in, Bias bias,
                                                 TpInfo tp) {
  std::vector<WeightPart> weights, biases;
  for (const FusedPart& p : parts) {
    const Shard rows = ShardOf(p.out, tp);
    weights.push_back(Part(p.name + ".weight", {p.out, in}, rows.begin, rows.end, 0, in));
    if (bias == Bias::kRequired) {
      biases.push_back(Part(p.name + ".bias", {p.out}, 0, 1, rows.begin, rows.end));
    } else {
      KAON_RETURN_IF_ERROR(RefuseUnexpectedBias(store, p.name));
    }
  }
  LinearWeights l;
  KAON_ASSIGN_OR_RETURN(l.weight, backend.LoadWeight(store, weights));
  if (!biases.empty()) {
    KAON_ASSIGN_OR_RETURN(l.bias, backend.LoadWeight(store, biases));
  }
  return l;
}

absl::StatusOr<LinearWeights> LoadRowParallel(Backend& backend, const WeightStore& store, const std::string& name,
                                              int64_t out, int64_t in, Bias bias, TpInfo tp) {
  const Shard cols = ShardOf(in, tp);
  const WeightPart w = Part(name + ".weight", {out, in}, 0, out, cols.begin, cols.end);
  LinearWeights l;
  KAON_ASSIGN_OR_RETURN(l.weight, backend.LoadWeight(store, std::span<const WeightPart>(&w, 1)));
  if (bias == Bias::kRequired) {
    WeightPart b = Part(name + ".bias", {out}, 0, 1, 0, out);
    b.zero = tp.rank != 0;
    KAON_ASSIGN_OR_RETURN(l.bias, backend.LoadWeight(store, std::span<const WeightPart>(&b, 1)));
  } else {
    KAON_RETURN_IF_ERROR(RefuseUnexpectedBias(store, name));
  }
  return l;
}

absl::StatusOr<Tensor> LoadVector(Backend& backend, const WeightStore& store, const std::string& name, int64_t size) {
  const WeightPart p = Part(name, {size}, 0, 1, 0, size);
  return backend.LoadWeight(store, std::span<const WeightPart>(&p, 1));
}

absl::StatusOr<Tensor> LoadRows(Backend& backend, const WeightStore& store, const std::string& name, int64_t rows,
                                int64_t cols, Shard shard) {
  const WeightPart p = Part(name, {rows, cols}, shard.begin, shard.end, 0, cols);
  return backend.LoadWeight(store, std::span<const WeightPart>(&p, 1));
}

}  // namespace kaon::layers
