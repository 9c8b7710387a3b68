#include "server/tokenizer/bpe_model.h"

#include <cstdio>
#include <algorithm>

#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "server/common/status.h"
#include "server/common/utf8.h"

namespace kaon {
namespace {

absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// Word caches skip long words, as HF's does: they rarely repeat.
constexpr size_t kMaxCachedWordBytes = 256;

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::FromJson(const tj::Json& model,
                                                             const std::string& path) {
  std::unique_ptr<BpeModel> m(new BpeModel());
  if (model.contains("dropout") && !model["dropout"].is_null()) {
    return tj::Invalid(tj::Sub(path, "dropout"), "must be null (BPE dropout is not supported)");
  }
  KAON_ASSIGN_OR_RETURN(m->fuse_unk_, tj::BoolOr(model, "fuse_unk", path, false));
  KAON_ASSIGN_OR_RETURN(m->byte_fallback_, tj::BoolOr(model, "byte_fallback", path, false));
  KAON_ASSIGN_OR_RETURN(m->ignore_merges_, tj::BoolOr(model, "ignore_merges", path, false));
  KAON_ASSIGN_OR_RETURN(m->continuing_subword_prefix_,
                        tj::StringOr(model, "continuing_subword_prefix", path, ""));
  KAON_ASSIGN_OR_RETURN(m->end_of_word_suffix_, tj::StringOr(model, "end_of_word_suffix", path, ""));
  KAON_ASSIGN_OR_RETURN(std::optional<std::string> unk, tj::OptionalString(model, "unk_token", path));

  const std::string vocab_path = tj::Sub(path, "vocab");
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return tj::Invalid(vocab_path, "expected an object mapping tokens to ids");
  }
  const tj::Json& vocab = model["vocab"];
  m->vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > INT32_MAX) {
      return tj::Invalid(tj::Sub(vocab_path, it.key()), "expected a non-negative id");
    }
    const auto id = static_cast<int32_t>(it.value().get<int64_t>());
    m->vocab_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  m->id_to_token_.resize(static_cast<size_t>(max_id) + 1);
  m->has_id_.assign(m->id_to_token_.size(), false);
  for (const auto& [token, id] : m->vocab_) {
    m->id_to_token_[id] = token;
    m->has_id_[id] = true;
  }

  if (unk.has_value()) {
    auto id = m->TokenToId(*unk);
    // HF only fails when an unknown character actually needs the token; an
    // absent unk_token then behaves like none.
    if (id.has_value()) m->unk_id_ = *id;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto id = m->TokenToId(name);
    m->byte_ids_[b] = id.value_or(-1);
  }

  KAON_ASSIGN_OR_RETURN(const tj::Json* merges, tj::Array(model, "merges", path));
  m->merges_.reserve(merges->size());
  const size_t prefix_len = m->continuing_subword_prefix_.size();
  for (size_t i = 0; i < merges->size(); ++i) {
    const tj::Json& entry = (*merges)[i];
    const std::string field = tj::Index(tj::Sub(path, "merges"), i);
    std::string a, b;
    if (entry.is_string()) {
      const std::string s = entry.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return tj::Invalid(field, "expected \"a b\", got \"" + s + "\"");
      }
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
               entry[1].is_string()) {
      a = entry[0].get<std::string>();
      b = entry[1].get<std::string>();
    } else {
      return tj::Invalid(field, "expected \"a b\" or [\"a\", \"b\"]");
    }
    auto a_id = m->TokenToId(a);
    auto b_id = m->TokenToId(b);
    if (!a_id || !b_id) {
      return tj::Invalid(field, "merge refers to token \"" + (a_id ? b : a) +
                                    "\" which is not in model.vocab");
    }
    const std::string merged = a + (b.size() >= prefix_len ? b.substr(prefix_len) : std::string());
    auto new_id = m->TokenToId(merged);
    if (!new_id) {
      return tj::Invalid(field, "merged token \"" + merged + "\" is not in model.vocab");
    }
    m->merges_[PairKey(*a_id, *b_id)] = MergeTarget{static_cast<int32_t>(i), *new_id};
  }
  return m;
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  auto it = vocab_.find(AbslView(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

const BpeModel::MergeTarget* BpeModel::FindMerge(int32_t a, int32_t b) const {
  auto it = merges_.find(PairKey(a, b));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::Tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto id = TokenToId(word)) {
      out.push_back(*id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable && cache_.Get(word, out)) return;
  const size_t before = out.size();
  MergeWord(word, out);
  if (cacheable) cache_.Put(word, out.data() + before, out.size() - before);
}

void BpeModel::MergeWord(std::string_view word, std::vector<int32_t>& out) const {
  thread_local std::vector<Symbol> symbols;
  thread_local std::string piece;
  symbols.clear();
  auto add = [&](int32_t id, uint32_t len) {
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back(Symbol{id, n - 1, n + 1, len});
  };
  // A pending unknown: HF fuses consecutive ones before adding them.
  bool has_unk = false;
  int32_t unk_id = 0;
  uint32_t unk_len = 0;
  for (size_t i = 0; i < word.size();) {
    const size_t start = i;
    utf8::Next(word, i);
    const auto byte_len = static_cast<uint32_t>(i - start);
    std::string_view s = word.substr(start, byte_len);
    if ((start != 0 && !continuing_subword_prefix_.empty()) ||
        (i == word.size() && !end_of_word_suffix_.empty())) {
      piece.clear();
      if (start != 0) piece += continuing_subword_prefix_;
      piece += s;
      if (i == word.size()) piece += end_of_word_suffix_;
      s = piece;
    }
    if (auto id = TokenToId(s)) {
      if (has_unk) {
        add(unk_id, unk_len);
        has_unk = false;
      }
      add(*id, byte_len);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : s) all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        // Like HF, a pending unknown is not flushed before the bytes.
        for (char c : s) add(byte_ids_[static_cast<unsigned char>(c)], 1);
        continue;
      }
    }
    if (unk_id_) {
      if (has_unk && fuse_unk_) {
        unk_len += byte_len;
      } else {
        if (has_unk) add(unk_id, unk_len);
        has_unk = true;
        unk_id = *unk_id_;
        unk_len = byte_len;
      }
    }
  }
  if (has_unk) add(unk_id, unk_len);
  if (!symbols.empty()) symbols.back().next = -1;
  MergeAll(symbols);
  for (const Symbol& s : symbols) {
    if (s.len != 0) out.push_back(s.id);
  }
}

void BpeModel::MergeAll(std::vector<Symbol>& symbols) const {
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    // Lowest rank first, then leftmost.
    bool operator<(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  // A binary heap on a reused per-thread buffer, to avoid an allocation per word.
  thread_local std::vector<Candidate> queue;
  queue.clear();
  auto push = [](Candidate c) {
    queue.push_back(c);
    std::push_heap(queue.begin(), queue.end());
  };
  const auto n = static_cast<int32_t>(symbols.size());
  for (int32_t i = 0; i + 1 < n; ++i) {
    if (const MergeTarget* m = FindMerge(symbols[i].id, symbols[i + 1].id)) {
      push(Candidate{m->rank, i, m->new_id});
    }
  }
  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end());
    const Candidate top = queue.back();
    queue.pop_back();
    Symbol& cur = symbols[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const int32_t next_pos = cur.next;
    const Symbol right = symbols[next_pos];
    const MergeTarget* still = FindMerge(cur.id, right.id);
    if (still == nullptr || still->new_id != top.new_id) continue;  // stale entry
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next >= 0 && right.next < n) symbols[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (const MergeTarget* m = FindMerge(symbols[cur.prev].id, cur.id)) {
        push(Candidate{m->rank, cur.prev, m->new_id});
      }
    }
    if (cur.next >= 0 && cur.next < n) {
      if (const MergeTarget* m = FindMerge(cur.id, symbols[cur.next].id)) {
        push(Candidate{m->rank, top.pos, m->new_id});
      }
    }
  }
}

bool BpeModel::WordCache::Get(std::string_view word, std::vector<int32_t>& out) const {
  Shard& shard = shards_[absl::Hash<absl::string_view>()(AbslView(word)) % kShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.map.find(AbslView(word));
  if (it == shard.map.end()) return false;
  out.insert(out.end(), it->second.begin(), it->second.end());
  return true;
}

void BpeModel::WordCache::Put(std::string_view word, const int32_t* ids, size_t n) const {
  Shard& shard = shards_[absl::Hash<absl::string_view>()(AbslView(word)) % kShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.map.size() >= kCapacityPerShard) return;
  shard.map.emplace(std::string(word), std::vector<int32_t>(ids, ids + n));
}

}  // namespace kaon
