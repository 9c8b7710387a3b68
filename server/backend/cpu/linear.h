// Linear layers in fp32 on the CPU (OpenBLAS), in the tensor-parallel shapes
// the model files compose: column-parallel (output rows split over ranks),
// row-parallel (input columns split; partial sums need an all-reduce), fused
// QKV and fused gate/up (merged column-parallel). Weights are sliced for
// (tp.rank, tp.size) and fused at load time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cpu/thread_pool.h"
#include "server/backend/causal_lm.h"
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

  // y[m, out] = x[m, in] * W^T + b. With a pool, large products are split
  // by output columns over its threads (OpenBLAS itself runs single-threaded:
  // see UseSingleThreadedBlas).
  void Forward(const float* x, int64_t m, float* y, kernels::cpu::ThreadPool* pool = nullptr) const;

 private:
  int64_t out_ = 0;
  int64_t in_ = 0;
  std::vector<float> weight_;  // [out, in] row-major, as Hugging Face stores it
  std::vector<float> bias_;    // [out] or empty
};

// The CPU backend does its own threading; OpenBLAS's threads busy-wait
// between calls and would fight the pool for cores. Call once at start-up.
void UseSingleThreadedBlas();

// Which bias a load expects: a missing tensor is an error when kRequired.
enum class Bias { kNone, kRequired };

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
struct FusedPart {
  std::string name;
  int64_t out;
};
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

// The rank's share [begin, end) of `total` items split over tp.size ranks.
struct Shard {
  int64_t begin;
  int64_t end;
  int64_t size() const { return end - begin; }
};
Shard ShardOf(int64_t total, TpInfo tp);

}  // namespace kaon::layers
