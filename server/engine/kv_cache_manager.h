// Per-request KV cache block tables on top of BlockPool, with automatic
// prefix caching in the manner of vLLM v1 (one KV cache group).
//
// Usage per scheduling step, for a request not yet holding blocks:
//   auto hit = m.FindCachedPrefix(tokens);
//   if (m.Allocate(id, hit.num_tokens + n, &hit)) ...
// A hit must be passed to Allocate before any other Allocate runs (another
// allocation may evict its blocks; Allocate checks this and aborts).
// After the step: m.CacheComputedBlocks(id, tokens, num_computed).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "server/engine/block_pool.h"

namespace kaon {

struct KvCacheStats {
  int64_t num_blocks = 0;
  int64_t num_free_blocks = 0;  // ref 0, cached-but-evictable included
  double usage() const {
    return num_blocks == 0 ? 0.0 : 1.0 - static_cast<double>(num_free_blocks) / num_blocks;
  }
  int64_t prefix_queries = 0;  // tokens looked up
  int64_t prefix_hits = 0;     // tokens found
  int64_t evictions = 0;       // cached blocks reused for new contents
};

class KvCacheManager {
 public:
  KvCacheManager(int64_t num_blocks, int64_t block_size, bool enable_prefix_caching);

  struct PrefixHit {
    std::vector<int32_t> blocks;
    int64_t num_tokens = 0;
  };
  // Longest cached prefix of full blocks, stopping short of the last token
  // so that it is always computed and yields logits. Each hit block's stored
  // tokens and parent chain hash are compared, so a colliding key never
  // hits; a wrong hit would need two different prefixes with equal 64-bit
  // chain hashes (a risk vLLM accepts too).
  PrefixHit FindCachedPrefix(std::span<const int32_t> tokens, bool count_stats = true) const;

  // Grows request `id` to hold `num_tokens` tokens. `hit` seeds a request
  // seen for the first time and must be null or empty otherwise. Returns
  // false, changing nothing, when the free blocks do not suffice.
  bool Allocate(int64_t id, int64_t num_tokens, const PrefixHit* hit = nullptr);

  // Registers the request's newly full blocks among its first `num_computed`
  // tokens of `tokens` (prompt + output so far). Unknown id: no-op.
  void CacheComputedBlocks(int64_t id, std::span<const int32_t> tokens, int64_t num_computed);

  // Drops the request's blocks (finish, abort, preemption). Its blocks
  // reach the free queue tail last-block-first so a request's tail is
  // evicted before its head. Unknown id: no-op.
  void Free(int64_t id);

  std::span<const int32_t> Blocks(int64_t id) const;
  int64_t NumBlocksNeeded(int64_t num_tokens) const {
    return (num_tokens + block_size_ - 1) / block_size_;
  }
  bool CanEverFit(int64_t num_tokens) const { return NumBlocksNeeded(num_tokens) <= num_blocks(); }
  int64_t block_size() const { return block_size_; }
  int64_t num_blocks() const { return pool_.num_blocks(); }
  int64_t num_free_blocks() const { return pool_.num_free(); }
  bool prefix_caching_enabled() const { return enable_prefix_caching_; }
  const KvCacheStats& stats() const;

  // Forgets every cached block at ref 0. Blocks held by running requests
  // stay cached: they are valid and their requests keep hashing on top of
  // them, so this is safe at any time. Returns the number dropped.
  int64_t ResetPrefixCache();

  // Empty when every invariant holds, else the first violation (for tests).
  std::string CheckInvariants() const;

  // For tests: replaces XXH3 so that collisions can be forced. Call before
  // anything is cached.
  using BlockHashFn = uint64_t (*)(std::span<const int32_t> tokens, uint64_t parent_hash);
  void SetBlockHashForTesting(BlockHashFn fn) { hash_fn_ = fn; }

 private:
  struct Request {
    std::vector<int32_t> blocks;
    int64_t num_hashed = 0;  // leading blocks already offered to the cache
    uint64_t last_hash = 0;  // chain hash of block num_hashed - 1
    bool chain_broken = false;
  };

  uint64_t BlockHash(std::span<const int32_t> tokens, uint64_t parent) const;
  std::span<const int32_t> BlockTokens(std::span<const int32_t> tokens, int64_t i) const {
    return tokens.subspan(static_cast<size_t>(i * block_size_), static_cast<size_t>(block_size_));
  }

  int64_t block_size_;
  bool enable_prefix_caching_;
  BlockPool pool_;
  BlockHashFn hash_fn_;
  absl::flat_hash_map<int64_t, Request> requests_;
  // Block tables of freed requests, kept for their capacity.
  std::vector<std::vector<int32_t>> spare_tables_;
  mutable KvCacheStats stats_;
};

}  // namespace kaon
