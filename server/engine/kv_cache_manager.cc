#include "server/engine/kv_cache_manager.h"

#include <xxhash.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/status.h"

namespace kaon {
namespace {

// Parent hash of a request's first block.
constexpr uint64_t kRootHash = 0x6b616f6e6b763031ULL;

uint64_t Xxh3BlockHash(std::span<const int32_t> tokens, uint64_t parent_hash) {
  return XXH3_64bits_withSeed(tokens.data(), tokens.size_bytes(), parent_hash);
}

}  // namespace

KvCacheManager::KvCacheManager(int64_t num_blocks, int64_t block_size, bool enable_prefix_caching)
    : block_size_(block_size),
      enable_prefix_caching_(enable_prefix_caching),
      pool_(static_cast<int32_t>(num_blocks), static_cast<int32_t>(block_size)),
      hash_fn_(&Xxh3BlockHash) {
  KAON_CHECK(num_blocks > 0 && num_blocks < (int64_t{1} << 31)) << "num_blocks " << num_blocks;
  KAON_CHECK(block_size > 0 && block_size < (int64_t{1} << 20)) << "block_size " << block_size;
  stats_.num_blocks = num_blocks;
}

uint64_t KvCacheManager::BlockHash(std::span<const int32_t> tokens, uint64_t parent) const {
  const uint64_t h = hash_fn_(tokens, parent);
  // A block hashing to the root value could match as its own descendant and
  // land twice in one block table.
  return h == kRootHash ? h + 1 : h;
}

const KvCacheStats& KvCacheManager::stats() const {
  stats_.num_free_blocks = pool_.num_free();
  return stats_;
}

KvCacheManager::PrefixHit KvCacheManager::FindCachedPrefix(std::span<const int32_t> tokens,
                                                           bool count_stats) const {
  PrefixHit hit;
  if (!enable_prefix_caching_ || tokens.empty()) return hit;
  const int64_t max_blocks = (static_cast<int64_t>(tokens.size()) - 1) / block_size_;
  uint64_t parent = kRootHash;
  for (int64_t i = 0; i < max_blocks; ++i) {
    const auto block_tokens = BlockTokens(tokens, i);
    const uint64_t h = BlockHash(block_tokens, parent);
    const int32_t block = pool_.Find(h, parent, block_tokens);
    if (block < 0) break;
    hit.blocks.push_back(block);
    parent = h;
  }
  hit.num_tokens = static_cast<int64_t>(hit.blocks.size()) * block_size_;
  if (count_stats) {
    stats_.prefix_queries += static_cast<int64_t>(tokens.size());
    stats_.prefix_hits += hit.num_tokens;
  }
  return hit;
}

bool KvCacheManager::Allocate(int64_t id, int64_t num_tokens, const PrefixHit* hit) {
  KAON_CHECK(num_tokens >= 0) << "request " << id << " num_tokens " << num_tokens;
  auto it = requests_.find(id);
  const bool is_new = it == requests_.end();
  std::span<const int32_t> hit_blocks;
  if (hit != nullptr) hit_blocks = hit->blocks;
  KAON_CHECK(is_new || hit_blocks.empty()) << "prefix hit for running request " << id;

  const int64_t have = is_new ? static_cast<int64_t>(hit_blocks.size())
                              : static_cast<int64_t>(it->second.blocks.size());
  const int64_t num_new = std::max<int64_t>(0, NumBlocksNeeded(num_tokens) - have);
  // Hit blocks at ref 0 sit in the free queue but are not ours to hand out.
  int64_t revived = 0;
  for (int32_t b : hit_blocks) {
    KAON_CHECK(b >= 0 && b < num_blocks() && pool_.is_cached(b))
        << "stale prefix hit block " << b << " for request " << id;
    if (pool_.ref(b) == 0) ++revived;
  }
  if (num_new > pool_.num_free() - revived) return false;

  if (is_new) {
    it = requests_.try_emplace(id).first;
    if (!spare_tables_.empty()) {
      it->second.blocks = std::move(spare_tables_.back());
      spare_tables_.pop_back();
    }
    it->second.last_hash = kRootHash;
  }
  Request& req = it->second;
  if (!hit_blocks.empty()) {
    for (int32_t b : hit_blocks) {
      pool_.Acquire(b);
      req.blocks.push_back(b);
    }
    // The hit blocks are this request's chain already; skip rehashing them.
    req.num_hashed = static_cast<int64_t>(hit_blocks.size());
    req.last_hash = pool_.hash(hit_blocks.back());
  }
  for (int64_t i = 0; i < num_new; ++i) {
    bool evicted = false;
    req.blocks.push_back(pool_.PopFree(evicted));
    stats_.evictions += evicted;
  }
  return true;
}

void KvCacheManager::CacheComputedBlocks(int64_t id, std::span<const int32_t> tokens,
                                         int64_t num_computed) {
  if (!enable_prefix_caching_) return;
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  Request& req = it->second;
  const int64_t num_full =
      std::min<int64_t>(num_computed, static_cast<int64_t>(tokens.size())) / block_size_;
  if (req.chain_broken || num_full <= req.num_hashed) return;
  KAON_CHECK(num_full <= static_cast<int64_t>(req.blocks.size()))
      << "request " << id << " computed " << num_computed << " tokens in "
      << req.blocks.size() << " blocks";
  for (int64_t i = req.num_hashed; i < num_full; ++i) {
    const auto block_tokens = BlockTokens(tokens, i);
    const uint64_t h = BlockHash(block_tokens, req.last_hash);
    if (pool_.Insert(req.blocks[i], h, req.last_hash, block_tokens) ==
        BlockPool::InsertResult::kCollision) {
      // Blocks after this one would be keyed off a hash that names a
      // different block; caching them could give other prompts wrong hits.
      req.chain_broken = true;
      break;
    }
    req.last_hash = h;
    req.num_hashed = i + 1;
  }
}

void KvCacheManager::Free(int64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  std::vector<int32_t>& blocks = it->second.blocks;
  for (auto b = blocks.rbegin(); b != blocks.rend(); ++b) pool_.Release(*b);
  blocks.clear();
  spare_tables_.push_back(std::move(blocks));
  requests_.erase(it);
}

std::span<const int32_t> KvCacheManager::Blocks(int64_t id) const {
  auto it = requests_.find(id);
  if (it == requests_.end()) return {};
  return it->second.blocks;
}

int64_t KvCacheManager::ResetPrefixCache() { return pool_.DropFreeCached(); }

std::string KvCacheManager::CheckInvariants() const {
  if (std::string pool_error = pool_.CheckInvariants(); !pool_error.empty()) return pool_error;
  std::vector<int32_t> refs(num_blocks(), 0);
  std::vector<int64_t> owner(num_blocks(), -1);
  for (const auto& [id, req] : requests_) {
    if (req.num_hashed > static_cast<int64_t>(req.blocks.size()))
      return absl::StrCat("request ", id, " hashed ", req.num_hashed, " of ",
                          req.blocks.size(), " blocks");
    for (int32_t b : req.blocks) {
      if (b < 0 || b >= num_blocks()) return absl::StrCat("request ", id, " holds bad id ", b);
      if (owner[b] == id) return absl::StrCat("request ", id, " holds block ", b, " twice");
      owner[b] = id;
      ++refs[b];
    }
  }
  for (int32_t b = 0; b < num_blocks(); ++b) {
    if (pool_.ref(b) != refs[b])
      return absl::StrCat("block ", b, " has ref ", pool_.ref(b), " but ", refs[b],
                          " tables hold it");
  }
  return {};
}

}  // namespace kaon
