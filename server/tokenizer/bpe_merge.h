// The merge loop of BPE over one word's symbols, exactly as Hugging Face
// tokenizers' Word::merge_all: repeatedly take the pending merge of lowest
// rank (the leftmost on ties), skip it if earlier merges made it stale, and
// apply it otherwise. Two implementations with the same pop order: a binary
// heap (HF's, fast for the short words of ordinary text) and a bucket queue
// by rank (linear in practice, for words of millions of symbols).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace kaon::bpe {

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  uint32_t len;  // 0 once merged into its left neighbour
};

struct MergeTarget {
  int32_t rank;
  int32_t new_id;
};

// (left id, right id) → rank and result; a pair listed twice keeps its last
// entry, as HF's map does.
class MergeTable {
 public:
  void Reserve(size_t n) { map_.reserve(n); }
  void Add(int32_t a, int32_t b, MergeTarget target);
  const MergeTarget* Find(int32_t a, int32_t b) const {
    auto it = map_.find(Key(a, b));
    return it == map_.end() ? nullptr : &it->second;
  }
  // One past the largest rank.
  int32_t RankLimit() const { return rank_limit_; }

 private:
  static uint64_t Key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  absl::flat_hash_map<uint64_t, MergeTarget> map_;
  int32_t rank_limit_ = 0;
};

// A pending merge of the symbol at `pos` with its right neighbour.
struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  // std::*_heap keep the largest first: lowest rank, then leftmost, is largest.
  bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

// Buffers of both loops, reused across words by their owner.
struct MergeScratch {
  struct Entry {
    int32_t pos;
    int32_t new_id;
  };
  std::vector<Candidate> heap;        // the heap loop's queue; the bucket loop's out-of-order pairs
  std::vector<int32_t> slot_of_rank;  // the bucket loop's: rank → index in `buckets`, or -1
  std::vector<std::vector<Entry>> buckets;  // each in push order; emptied ones are reused
  std::vector<int32_t> free_slots;
  std::vector<int32_t> ranks;  // a min-heap of the ranks with a bucket
  std::vector<Entry> bucket;   // the bucket being applied, by position

  size_t Bytes() const;
  // Empties every buffer, giving back those a long word grew (scratch.h).
  void Trim();
};

// Words with at least this many symbols take the bucket loop. Below it the
// heap stays small and in cache and the bucket loop's per-word table (one
// slot per merge rank) costs more than it saves: measured on Llama 3 and
// Gemma 3, the heap is 1.7x faster at 2048 symbols, the buckets 2x at 4096.
inline constexpr size_t kBucketedMinSymbols = 4096;

// Both leave merged-away symbols with len 0 and apply exactly the same merges.
void MergeAllHeap(const MergeTable& merges, std::vector<Symbol>& symbols, MergeScratch& scratch);
void MergeAllBucketed(const MergeTable& merges, std::vector<Symbol>& symbols, MergeScratch& scratch);

// The one that suits the word's length.
inline void MergeAll(const MergeTable& merges, std::vector<Symbol>& symbols, MergeScratch& scratch) {
  if (symbols.size() >= kBucketedMinSymbols) {
    MergeAllBucketed(merges, symbols, scratch);
  } else {
    MergeAllHeap(merges, symbols, scratch);
  }
}

}  // namespace kaon::bpe
