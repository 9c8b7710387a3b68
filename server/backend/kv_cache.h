// The paged KV cache's memory (one K and one V pool per layer, in the layout of
// kernels/cpu/paged_kv.h) and a plain free list of block ids. The engine's KV
// cache manager (ref counts, prefix caching) builds on the allocator; the
// memory pool stays a separate object so a device pool can replace it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "kernels/cpu/paged_kv.h"

namespace kaon {

// The KV cache's memory, owned by the backend the model runs on (a model
// creates it: CausalLM::CreateKvCache), in the layout of kernels/cpu/paged_kv.h.
class KvCache {
 public:
  virtual ~KvCache() = default;
  const kernels::PagedKvShape& shape() const { return shape_; }
  int64_t num_layers() const { return num_layers_; }

 protected:
  KvCache(int64_t num_layers, const kernels::PagedKvShape& shape) : num_layers_(num_layers), shape_(shape) {}

 private:
  int64_t num_layers_;
  kernels::PagedKvShape shape_;
};

// fp32 pools in host memory, for the CPU backend.
class HostKvCache : public KvCache {
 public:
  HostKvCache(int64_t num_layers, const kernels::PagedKvShape& shape);

  float* k(int64_t layer) { return k_[layer].get(); }
  float* v(int64_t layer) { return v_[layer].get(); }
  const float* k(int64_t layer) const { return k_[layer].get(); }
  const float* v(int64_t layer) const { return v_[layer].get(); }

 private:
  // Left uninitialised: attention only reads slots this sequence wrote, and
  // untouched pages of a large pool cost no memory or start-up time.
  std::vector<std::unique_ptr<float[]>> k_;
  std::vector<std::unique_ptr<float[]>> v_;
};

class BlockAllocator {
 public:
  // With a shuffle seed the free list starts in a scrambled order, so tests
  // prove that nothing relies on a sequence's blocks being contiguous.
  BlockAllocator(int64_t num_blocks, std::optional<uint64_t> shuffle_seed = std::nullopt);

  std::optional<int32_t> Allocate();
  void Free(int32_t block);
  int64_t num_free() const { return static_cast<int64_t>(free_.size()); }
  int64_t num_blocks() const { return num_blocks_; }

 private:
  int64_t num_blocks_;
  std::vector<int32_t> free_;  // popped from the back
};

}  // namespace kaon
