// Host-side fp32 weight loading for the CUDA decoder, which uploads and
// converts each tensor after slicing it here: column-parallel (output rows
// split over ranks), row-parallel (input columns split), fused QKV and
// gate/up. Legacy: the CUDA backend behind server/backend/backend.h loads
// through Backend::LoadWeight instead (the next issue).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/layers/parallel_linear.h"
#include "server/loading/safetensors.h"

namespace kaon::layers {

class Linear {
 public:
  Linear() = default;
  Linear(int64_t out_features, int64_t in_features, std::vector<float> weight, std::vector<float> bias)
      : out_(out_features), in_(in_features), weight_(std::move(weight)), bias_(std::move(bias)) {}

  int64_t out_features() const { return out_; }
  int64_t in_features() const { return in_; }
  const float* weight() const { return weight_.data(); }
  const float* bias() const { return bias_.empty() ? nullptr : bias_.data(); }

 private:
  int64_t out_ = 0;
  int64_t in_ = 0;
  std::vector<float> weight_;  // [out, in] row-major, as Hugging Face stores it
  std::vector<float> bias_;    // [out] or empty
};

// Output rows [rank * out / size, (rank + 1) * out / size) of `name`.weight
// (shape [out, in]) and of its bias.
absl::StatusOr<Linear> LoadColumnParallel(const WeightStore& store, const std::string& name,
                                          int64_t out, int64_t in, Bias bias, TpInfo tp);

// Input columns [rank * in / size, ...) of `name`.weight; the bias is added on
// rank 0 only, so the all-reduced sum carries it once.
absl::StatusOr<Linear> LoadRowParallel(const WeightStore& store, const std::string& name,
                                       int64_t out, int64_t in, Bias bias, TpInfo tp);

// Several column-parallel projections fused into one matrix: each part's rank
// slice, stacked in order (q|k|v, gate|up). `parts` gives each part's name and
// full output size.
absl::StatusOr<Linear> LoadFusedColumnParallel(const WeightStore& store,
                                               const std::vector<FusedPart>& parts, int64_t in,
                                               Bias bias, TpInfo tp);

// Rows [begin, end) of a 2-D (or all of a 1-D) tensor as fp32, with its shape
// checked against `shape`.
absl::StatusOr<std::vector<float>> LoadRows(const WeightStore& store, const std::string& name,
                                            const std::vector<int64_t>& shape, int64_t begin,
                                            int64_t end);

// The whole tensor as fp32, shape-checked.
absl::StatusOr<std::vector<float>> LoadTensor(const WeightStore& store, const std::string& name,
                                              const std::vector<int64_t>& shape);

}  // namespace kaon::layers
