// Physical KV cache blocks: reference counts, the LRU free queue and the
// prefix-cache table (chain hash -> block). Knows nothing about requests.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace kaon {

class BlockPool {
 public:
  BlockPool(int32_t num_blocks, int32_t block_size);

  int32_t num_blocks() const { return num_blocks_; }
  int32_t block_size() const { return block_size_; }
  int64_t num_free() const { return num_free_; }
  int32_t ref(int32_t block) const { return meta_[block].ref; }
  bool is_cached(int32_t block) const { return meta_[block].cached; }
  uint64_t hash(int32_t block) const { return meta_[block].hash; }

  // Takes the least-recently-freed block and returns it with ref 1. Sets
  // `evicted` when the block had to be dropped from the prefix cache.
  int32_t PopFree(bool& evicted);
  // Adds a reference; a block at ref 0 leaves the free queue but keeps its
  // cached contents (a prefix hit revives it).
  void Acquire(int32_t block);
  // Drops a reference; at ref 0 the block joins the free queue's tail.
  void Release(int32_t block);

  // The cached block whose key is `hash` and whose parent hash and tokens
  // match exactly, or -1. Matching the stored tokens keeps a 64-bit
  // collision from turning into a wrong hit.
  int32_t Find(uint64_t hash, uint64_t parent, std::span<const int32_t> tokens) const;

  enum class InsertResult {
    kInserted,
    kAlreadyCached,  // an identical block (maybe `block` itself) owns the key
    kCollision,      // a different block owns the key; `block` stays uncached
  };
  InsertResult Insert(int32_t block, uint64_t hash, uint64_t parent,
                      std::span<const int32_t> tokens);

  // Forgets the contents of every block at ref 0. Returns how many.
  int64_t DropFreeCached();

  // Free-queue structure and table consistency; empty when sound.
  std::string CheckInvariants() const;

 private:
  struct Meta {
    int32_t ref = 0;
    int32_t prev = -1;  // free-queue links; meaningful only at ref 0
    int32_t next = -1;
    bool cached = false;
    uint64_t hash = 0;
    uint64_t parent = 0;
  };

  void Unlink(int32_t block);
  void PushBack(int32_t block);
  void Uncache(int32_t block);
  std::span<const int32_t> StoredTokens(int32_t block) const {
    return {stored_tokens_.data() + static_cast<size_t>(block) * block_size_,
            static_cast<size_t>(block_size_)};
  }

  int32_t num_blocks_;
  int32_t block_size_;
  int64_t num_free_ = 0;
  // meta_[num_blocks_] is the free queue's sentinel: its next is the head
  // (evicted first), its prev the tail.
  std::vector<Meta> meta_;
  std::vector<int32_t> stored_tokens_;  // block_size_ tokens per block
  absl::flat_hash_map<uint64_t, int32_t> table_;
};

}  // namespace kaon
