#include "server/backend/kv_cache.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "server/common/status.h"

namespace kaon {

HostKvCache::HostKvCache(int64_t num_layers, const kernels::PagedKvShape& shape) : KvCache(num_layers, shape) {
  k_.resize(num_layers);
  v_.resize(num_layers);
  for (int64_t l = 0; l < num_layers; ++l) {
    k_[l].reset(new float[shape.layer_elems()]);
    v_[l].reset(new float[shape.layer_elems()]);
  }
}

BlockAllocator::BlockAllocator(int64_t num_blocks, std::optional<uint64_t> shuffle_seed)
    : num_blocks_(num_blocks) {
  free_.resize(num_blocks);
  // Reverse order so that, unshuffled, block 0 is handed out first.
  std::iota(free_.rbegin(), free_.rend(), 0);
  if (shuffle_seed) {
    std::mt19937_64 rng(*shuffle_seed);
    std::shuffle(free_.begin(), free_.end(), rng);
  }
}

std::optional<int32_t> BlockAllocator::Allocate() {
  if (free_.empty()) return std::nullopt;
  const int32_t b = free_.back();
  free_.pop_back();
  return b;
}

void BlockAllocator::Free(int32_t block) {
  KAON_CHECK(block >= 0 && block < num_blocks_) << "freeing block " << block;
  free_.push_back(block);
}

}  // namespace kaon
