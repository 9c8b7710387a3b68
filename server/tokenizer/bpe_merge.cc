#include "server/tokenizer/bpe_merge.h"

#include <algorithm>
#include <functional>

#include "server/tokenizer/scratch.h"

namespace kaon::bpe {
namespace {

// One pop of HF's loop: applies the pending merge of `pos` with its right
// neighbour unless it is stale (the symbol was merged away, has no right
// neighbour any more, or the pair it forms now does not merge into new_id:
// HF compares the result, not the rank), then hands the two pairs the merge
// formed to push(rank, pos, new_id).
template <typename Push>
void Apply(const MergeTable& merges, std::vector<Symbol>& symbols, int32_t pos, int32_t new_id, Push&& push) {
  Symbol& cur = symbols[pos];
  if (cur.len == 0 || cur.next == -1) return;
  const int32_t next_pos = cur.next;
  const Symbol right = symbols[next_pos];
  const MergeTarget* still = merges.Find(cur.id, right.id);
  if (still == nullptr || still->new_id != new_id) return;
  const auto n = static_cast<int32_t>(symbols.size());
  cur.id = new_id;
  cur.len += right.len;
  cur.next = right.next;
  symbols[next_pos].len = 0;
  if (right.next >= 0 && right.next < n) symbols[right.next].prev = pos;
  if (cur.prev >= 0) {
    if (const MergeTarget* m = merges.Find(symbols[cur.prev].id, cur.id)) push(m->rank, cur.prev, m->new_id);
  }
  if (cur.next >= 0 && cur.next < n) {
    if (const MergeTarget* m = merges.Find(cur.id, symbols[cur.next].id)) push(m->rank, pos, m->new_id);
  }
}

}  // namespace

void MergeTable::Add(int32_t a, int32_t b, MergeTarget target) {
  map_[Key(a, b)] = target;
  rank_limit_ = std::max(rank_limit_, target.rank + 1);
}

size_t MergeScratch::Bytes() const {
  size_t n = heap.capacity() * sizeof(Candidate) + slot_of_rank.capacity() * sizeof(int32_t) +
             buckets.capacity() * sizeof(std::vector<Entry>) + free_slots.capacity() * sizeof(int32_t) +
             ranks.capacity() * sizeof(int32_t) + bucket.capacity() * sizeof(Entry);
  for (const std::vector<Entry>& b : buckets) n += b.capacity() * sizeof(Entry);
  return n;
}

void MergeScratch::Trim() {
  TrimScratch(heap);
  TrimScratch(slot_of_rank);
  // The bucket loop runs only on long words: its buffers never stay.
  std::vector<std::vector<Entry>>().swap(buckets);
  TrimScratch(free_slots);
  TrimScratch(ranks);
  TrimScratch(bucket);
}

void MergeAllHeap(const MergeTable& merges, std::vector<Symbol>& symbols, MergeScratch& scratch) {
  std::vector<Candidate>& queue = scratch.heap;
  queue.clear();
  auto push = [&queue](int32_t rank, int32_t pos, int32_t new_id) {
    queue.push_back(Candidate{rank, pos, new_id});
    std::push_heap(queue.begin(), queue.end());
  };
  const auto n = static_cast<int32_t>(symbols.size());
  for (int32_t i = 0; i + 1 < n; ++i) {
    if (const MergeTarget* m = merges.Find(symbols[i].id, symbols[i + 1].id)) push(m->rank, i, m->new_id);
  }
  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end());
    const Candidate top = queue.back();
    queue.pop_back();
    Apply(merges, symbols, top.pos, top.new_id, push);
  }
}

// The heap pops the pending candidate of lowest (rank, pos). Here the
// candidates of each rank wait in a bucket (a vector, in push order); buckets
// are taken lowest rank first and sorted by position, so a candidate costs
// O(1) instead of O(log n). The order stays the heap's: a pair formed while
// bucket r is applied goes to a bucket if its rank is above r (buckets not yet
// taken all rank above r) and to the small heap `early` otherwise, and the
// next candidate is always the lower of early's top and the bucket's next
// entry, so it is always the lowest pending one. Trained merge lists mostly
// form pairs ranked after the merge that made their token, so `early` stays
// small (it was empty on long runs of one character with Llama 2 and 3);
// hand-written or converted lists may need it more.
void MergeAllBucketed(const MergeTable& merges, std::vector<Symbol>& symbols, MergeScratch& scratch) {
  using Entry = MergeScratch::Entry;
  std::vector<int32_t>& slot_of_rank = scratch.slot_of_rank;
  std::vector<std::vector<Entry>>& buckets = scratch.buckets;
  std::vector<int32_t>& free_slots = scratch.free_slots;
  std::vector<int32_t>& ranks = scratch.ranks;
  std::vector<Candidate>& early = scratch.heap;
  std::vector<Entry>& bucket = scratch.bucket;
  slot_of_rank.assign(static_cast<size_t>(merges.RankLimit()), -1);
  free_slots.clear();
  for (size_t i = 0; i < buckets.size(); ++i) {
    buckets[i].clear();
    free_slots.push_back(static_cast<int32_t>(i));
  }
  ranks.clear();
  early.clear();
  bucket.clear();
  int32_t current = -1;  // the rank of the bucket being applied

  auto push = [&](int32_t rank, int32_t pos, int32_t new_id) {
    if (rank <= current) {
      early.push_back(Candidate{rank, pos, new_id});
      std::push_heap(early.begin(), early.end());
      return;
    }
    int32_t& slot = slot_of_rank[rank];
    if (slot < 0) {
      if (free_slots.empty()) {
        slot = static_cast<int32_t>(buckets.size());
        buckets.emplace_back();
      } else {
        slot = free_slots.back();
        free_slots.pop_back();
      }
      ranks.push_back(rank);
      std::push_heap(ranks.begin(), ranks.end(), std::greater<>());
    }
    buckets[slot].push_back(Entry{pos, new_id});
  };
  // Makes the lowest bucket `bucket`, sorted by position; its storage goes
  // back to the pool.
  auto take_bucket = [&]() {
    std::pop_heap(ranks.begin(), ranks.end(), std::greater<>());
    current = ranks.back();
    ranks.pop_back();
    const int32_t slot = slot_of_rank[current];
    slot_of_rank[current] = -1;
    bucket.swap(buckets[slot]);
    buckets[slot].clear();
    free_slots.push_back(slot);
    // Pairs are mostly pushed left to right.
    auto by_pos = [](const Entry& a, const Entry& b) { return a.pos < b.pos; };
    if (!std::is_sorted(bucket.begin(), bucket.end(), by_pos)) std::sort(bucket.begin(), bucket.end(), by_pos);
  };

  const auto n = static_cast<int32_t>(symbols.size());
  for (int32_t i = 0; i + 1 < n; ++i) {
    if (const MergeTarget* m = merges.Find(symbols[i].id, symbols[i + 1].id)) push(m->rank, i, m->new_id);
  }
  size_t next = 0;  // in `bucket`
  for (;;) {
    if (!early.empty() && (next == bucket.size() || Candidate{current, bucket[next].pos, 0} < early.front())) {
      std::pop_heap(early.begin(), early.end());
      const Candidate top = early.back();
      early.pop_back();
      Apply(merges, symbols, top.pos, top.new_id, push);
    } else if (next < bucket.size()) {
      const Entry top = bucket[next++];
      Apply(merges, symbols, top.pos, top.new_id, push);
    } else if (!ranks.empty()) {
      take_bucket();
      next = 0;
    } else {
      break;
    }
  }
}

}  // namespace kaon::bpe
