#include "server/engine/block_pool.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "server/common/status.h"

namespace kaon {

BlockPool::BlockPool(int32_t num_blocks, int32_t block_size)
    : num_blocks_(num_blocks), block_size_(block_size) {
  KAON_CHECK(num_blocks > 0 && num_blocks < std::numeric_limits<int32_t>::max())
      << "num_blocks " << num_blocks;
  KAON_CHECK(block_size > 0) << "block_size " << block_size;
  meta_.resize(static_cast<size_t>(num_blocks) + 1);
  meta_[num_blocks_].prev = meta_[num_blocks_].next = num_blocks_;
  // Ascending ids first, as vLLM hands them out; nothing depends on it.
  for (int32_t b = 0; b < num_blocks_; ++b) PushBack(b);
  stored_tokens_.resize(static_cast<size_t>(num_blocks) * block_size);
  table_.reserve(num_blocks);
}

void BlockPool::Unlink(int32_t block) {
  Meta& m = meta_[block];
  meta_[m.prev].next = m.next;
  meta_[m.next].prev = m.prev;
  m.prev = m.next = -1;
  --num_free_;
}

void BlockPool::PushBack(int32_t block) {
  const int32_t sentinel = num_blocks_;
  Meta& m = meta_[block];
  m.prev = meta_[sentinel].prev;
  m.next = sentinel;
  meta_[m.prev].next = block;
  meta_[sentinel].prev = block;
  ++num_free_;
}

void BlockPool::Uncache(int32_t block) {
  Meta& m = meta_[block];
  table_.erase(m.hash);
  m.cached = false;
}

int32_t BlockPool::PopFree(bool& evicted) {
  const int32_t block = meta_[num_blocks_].next;
  KAON_CHECK(block != num_blocks_) << "PopFree on an empty free queue";
  Unlink(block);
  evicted = meta_[block].cached;
  if (evicted) Uncache(block);
  meta_[block].ref = 1;
  return block;
}

void BlockPool::Acquire(int32_t block) {
  if (meta_[block].ref++ == 0) Unlink(block);
}

void BlockPool::Release(int32_t block) {
  KAON_CHECK(meta_[block].ref > 0) << "release of free block " << block;
  if (--meta_[block].ref == 0) PushBack(block);
}

int32_t BlockPool::Find(uint64_t hash, uint64_t parent, std::span<const int32_t> tokens) const {
  auto it = table_.find(hash);
  if (it == table_.end()) return -1;
  const int32_t block = it->second;
  if (meta_[block].parent != parent) return -1;
  if (!std::equal(tokens.begin(), tokens.end(), StoredTokens(block).begin())) return -1;
  return block;
}

BlockPool::InsertResult BlockPool::Insert(int32_t block, uint64_t hash, uint64_t parent,
                                          std::span<const int32_t> tokens) {
  KAON_CHECK(static_cast<int64_t>(tokens.size()) == block_size_);
  auto [it, inserted] = table_.try_emplace(hash, block);
  if (!inserted) {
    return Find(hash, parent, tokens) >= 0 ? InsertResult::kAlreadyCached
                                           : InsertResult::kCollision;
  }
  Meta& m = meta_[block];
  KAON_CHECK(!m.cached) << "block " << block << " cached twice";
  m.cached = true;
  m.hash = hash;
  m.parent = parent;
  std::copy(tokens.begin(), tokens.end(),
            stored_tokens_.begin() + static_cast<ptrdiff_t>(block) * block_size_);
  return InsertResult::kInserted;
}

int64_t BlockPool::DropFreeCached() {
  int64_t dropped = 0;
  for (int32_t b = meta_[num_blocks_].next; b != num_blocks_; b = meta_[b].next) {
    if (meta_[b].cached) {
      Uncache(b);
      ++dropped;
    }
  }
  return dropped;
}

std::string BlockPool::CheckInvariants() const {
  const int32_t sentinel = num_blocks_;
  std::vector<char> queued(num_blocks_, 0);
  int64_t count = 0;
  int32_t last = sentinel;
  for (int32_t b = meta_[sentinel].next; b != sentinel; last = b, b = meta_[b].next) {
    if (b < 0 || b >= num_blocks_) return absl::StrCat("free queue holds bad id ", b);
    if (queued[b]) return absl::StrCat("block ", b, " queued twice");
    if (meta_[b].prev != last) return absl::StrCat("block ", b, " has a broken prev link");
    if (meta_[b].ref != 0) return absl::StrCat("queued block ", b, " has ref ", meta_[b].ref);
    queued[b] = 1;
    if (++count > num_blocks_) return "free queue is cyclic";
  }
  if (meta_[sentinel].prev != last) return "free queue tail is wrong";
  if (count != num_free_)
    return absl::StrCat("free queue has ", count, " blocks but num_free is ", num_free_);
  int64_t num_cached = 0;
  for (int32_t b = 0; b < num_blocks_; ++b) {
    const Meta& m = meta_[b];
    if (m.ref < 0) return absl::StrCat("block ", b, " has ref ", m.ref);
    if (m.ref == 0 && !queued[b]) return absl::StrCat("block ", b, " at ref 0 is not queued");
    if (m.ref > 0 && (m.prev != -1 || m.next != -1))
      return absl::StrCat("block ", b, " in use keeps queue links");
    if (m.cached) ++num_cached;
  }
  for (const auto& [hash, block] : table_) {
    if (block < 0 || block >= num_blocks_) return absl::StrCat("table holds bad id ", block);
    if (!meta_[block].cached || meta_[block].hash != hash)
      return absl::StrCat("table entry ", hash, " -> block ", block, " whose hash is ",
                          meta_[block].hash, meta_[block].cached ? "" : " (uncached)");
  }
  if (num_cached != static_cast<int64_t>(table_.size()))
    return absl::StrCat(num_cached, " cached blocks but ", table_.size(), " table entries");
  return {};
}

}  // namespace kaon
