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

// Word caches skip long words, as HF's does: they rarely repeat.
constexpr size_t kMaxCachedWordBytes = 256;

// Slack for the density rule on vocabulary ids (bpe_model.h): small
// hand-written vocabularies may leave large gaps.
constexpr int64_t kIdSlack = 65536;

}  // namespace

struct BpeModel::Scratch {
  std::vector<bpe::Symbol> symbols;
  std::string piece;
  bpe::MergeScratch merge;
};

BpeModel::Scratch& BpeModel::ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

namespace tokenizer_internal {
size_t BpeScratchBytes() {
  const BpeModel::Scratch& s = BpeModel::ThreadScratch();
  return s.symbols.capacity() * sizeof(bpe::Symbol) + s.piece.capacity() + s.merge.Bytes();
}
}  // namespace tokenizer_internal

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
    KAON_ASSIGN_OR_RETURN(const int32_t id, tj::TokenId(it.value(), tj::Sub(vocab_path, it.key())));
    m->vocab_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  // Checked before the dense table below is sized from max_id.
  if (max_id >= 4 * static_cast<int64_t>(vocab.size()) + kIdSlack) {
    return tj::Invalid(vocab_path, "id " + std::to_string(max_id) + " is far beyond the " +
                                       std::to_string(vocab.size()) + " entries (ids must stay below 4 x entries + " +
                                       std::to_string(kIdSlack) + ")");
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
  m->affixes_empty_ = m->continuing_subword_prefix_.empty() && m->end_of_word_suffix_.empty();
  m->small_char_ids_.resize(kSmallChars);
  for (char32_t cp = 0; cp < kSmallChars; ++cp) {
    std::string c;
    utf8::Append(c, cp);
    m->small_char_ids_[cp] = m->TokenToId(c).value_or(-1);
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto id = m->TokenToId(name);
    m->byte_ids_[b] = id.value_or(-1);
  }

  KAON_ASSIGN_OR_RETURN(const tj::Json* merges, tj::Array(model, "merges", path));
  if (merges->size() > kMaxMerges) {
    return tj::Invalid(tj::Sub(path, "merges"), "has " + std::to_string(merges->size()) + " entries, more than " +
                                                    std::to_string(kMaxMerges));
  }
  m->merges_.Reserve(merges->size());
  MetaspaceSplit::Builder split;
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
    m->merges_.Add(*a_id, *b_id, bpe::MergeTarget{static_cast<int32_t>(i), *new_id});
    split.AddMerge(a, b);
  }
  m->split_ = split.Finish(m->SplitModel());
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

MetaspaceSplit::Model BpeModel::SplitModel() const {
  MetaspaceSplit::Model model;
  model.marker_in_vocab = TokenToId(MetaspaceSplit::kMarker).has_value();
  model.ids_unique = static_cast<size_t>(std::count(has_id_.begin(), has_id_.end(), true)) == vocab_.size();
  model.ignore_merges = ignore_merges_;
  model.has_affixes = !affixes_empty_;
  if (unk_id_) model.unk = id_to_token_[*unk_id_];
  if (byte_fallback_) {
    for (int32_t id : byte_ids_) {
      if (id >= 0) model.byte_tokens.push_back(id_to_token_[id]);
    }
  }
  return model;
}

void BpeModel::Tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto id = TokenToId(word)) {
      out.push_back(*id);
      return;
    }
  }
  if (split_) {
    split_->ForEachPiece(word, [&](std::string_view piece) { TokenizePiece(piece, out); });
  } else {
    TokenizePiece(word, out);
  }
}

void BpeModel::TokenizePiece(std::string_view piece, std::vector<int32_t>& out) const {
  // One known character merges with nothing: skip the cache's lock and hash
  // (digit-by-digit pre-tokenizers make millions of such words).
  if (piece.size() <= 2 && affixes_empty_) {
    size_t i = 0;
    const char32_t cp = utf8::Next(piece, i);
    if (i == piece.size() && cp < kSmallChars && small_char_ids_[cp] >= 0) {
      out.push_back(small_char_ids_[cp]);
      return;
    }
  }
  const bool cacheable = piece.size() <= kMaxCachedWordBytes;
  if (cacheable && cache_.Get(piece, out)) return;
  const size_t before = out.size();
  MergeWord(piece, out);
  if (cacheable) cache_.Put(piece, out.data() + before, out.size() - before);
}

void BpeModel::TokenizeUncut(std::string_view word, MergeLoop loop, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto id = TokenToId(word)) {
      out.push_back(*id);
      return;
    }
  }
  MergeWord(word, out, loop == MergeLoop::kHeap ? bpe::MergeAllHeap : bpe::MergeAllBucketed);
}

void BpeModel::MergeWord(std::string_view word, std::vector<int32_t>& out, MergeAllFn merge_all) const {
  Scratch& scratch = ThreadScratch();
  std::vector<bpe::Symbol>& symbols = scratch.symbols;
  std::string& piece = scratch.piece;
  symbols.clear();
  auto add = [&](int32_t id, uint32_t len) {
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back(bpe::Symbol{id, n - 1, n + 1, len});
  };
  // A pending unknown: HF fuses consecutive ones before adding them.
  bool has_unk = false;
  int32_t unk_id = 0;
  uint32_t unk_len = 0;
  for (size_t i = 0; i < word.size();) {
    const size_t start = i;
    const char32_t cp = utf8::Next(word, i);
    const auto byte_len = static_cast<uint32_t>(i - start);
    std::string_view s = word.substr(start, byte_len);
    bool affixed = false;
    if ((start != 0 && !continuing_subword_prefix_.empty()) ||
        (i == word.size() && !end_of_word_suffix_.empty())) {
      piece.clear();
      if (start != 0) piece += continuing_subword_prefix_;
      piece += s;
      if (i == word.size()) piece += end_of_word_suffix_;
      s = piece;
      affixed = true;
    }
    // Next returns code points below kSmallChars only for valid sequences,
    // so s is then exactly that character's encoding.
    std::optional<int32_t> id;
    if (!affixed && cp < kSmallChars) {
      if (small_char_ids_[cp] >= 0) id = small_char_ids_[cp];
    } else {
      id = TokenToId(s);
    }
    if (id) {
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
  merge_all(merges_, symbols, scratch.merge);
  for (const bpe::Symbol& s : symbols) {
    if (s.len != 0) out.push_back(s.id);
  }
  // A huge word (a long run without a split) must not pin its buffers.
  TrimScratch(symbols);
  TrimScratch(piece);
  scratch.merge.Trim();
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
  // Node and vector headers, roughly.
  const size_t cost = word.size() + n * sizeof(int32_t) + 64;
  if (shard.map.size() >= kCapacityPerShard || shard.bytes + cost > kBytesPerShard) return;
  if (shard.map.emplace(std::string(word), std::vector<int32_t>(ids, ids + n)).second) shard.bytes += cost;
}

}  // namespace kaon
