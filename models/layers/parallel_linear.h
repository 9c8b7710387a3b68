// Tensor-parallel linear layers as the model files compose them:
// column-parallel (output rows split over ranks), row-parallel (input columns
// split; the partial sums need an all-reduce), and fused QKV / gate-up
// (merged column-parallel: each part's rank slice, stacked in order). This is
// where sharding lives: it turns a layer and a rank into shard descriptors
// (server/backend/backend.h WeightPart) that the backend loads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/backend/backend.h"

namespace kaon::layers {

// Tensor-parallel position of this model replica.
struct TpInfo {
  int rank = 0;
  int size = 1;
};

// The rank's share [begin, end) of `total` items split over tp.size ranks.
struct Shard {
  int64_t begin;
  int64_t end;
  int64_t size() const { return end - begin; }
};
Shard ShardOf(int64_t total, TpInfo tp);

// Which bias a load expects: a missing tensor is an error when kRequired,
// and an unexpected one when kNone.
enum class Bias { kNone, kRequired };

struct LinearWeights {
  Tensor weight;  // [out (local), in (local)]
  Tensor bias;    // [1, out] or empty
  const Tensor* bias_or_null() const { return bias.empty() ? nullptr : &bias; }
};

struct FusedPart {
  std::string name;  // without ".weight"
  int64_t out;       // the part's full output size
};

absl::StatusOr<LinearWeights> LoadColumnParallel(Backend& backend, const WeightStore& store,
                                                 const std::vector<FusedPart>& parts, int64_t in, Bias bias,
                                                 TpInfo tp);
// The bias is added on rank 0 only, so the all-reduced sum carries it once.
absl::StatusOr<LinearWeights> LoadRowParallel(Backend& backend, const WeightStore& store, const std::string& name,
                                              int64_t out, int64_t in, Bias bias, TpInfo tp);

// A whole 1-D tensor (norm weights) as one row.
absl::StatusOr<Tensor> LoadVector(Backend& backend, const WeightStore& store, const std::string& name, int64_t size);

// Rows [begin, end) of a [rows, cols] tensor (vocab-parallel embedding and LM head).
absl::StatusOr<Tensor> LoadRows(Backend& backend, const WeightStore& store, const std::string& name, int64_t rows,
                                int64_t cols, Shard shard);

}  // namespace kaon::layers
