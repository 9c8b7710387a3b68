// The BPE model of tokenizer.json, merging exactly as HF tokenizers' Word::merge_all.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "server/tokenizer/bpe_merge.h"
#include "server/tokenizer/json_fields.h"
#include "server/tokenizer/metaspace_split.h"
#include "server/tokenizer/scratch.h"

namespace kaon {

class BpeModel {
 public:
  // tokenizer.json's merges: Llama 3 lists 280147, so 2^23 is 30x that.
  static constexpr size_t kMaxMerges = size_t{1} << 23;

  // `model` is tokenizer.json's "model" object; `path` names it in errors.
  // Ids must be at most tj::kMaxTokenId, and the id → token table is dense,
  // so the largest id must also stay below 4 × (entries) + 65536: holes are
  // allowed (converters leave out ids that added_tokens define) but a table
  // cannot be mostly holes.
  static absl::StatusOr<std::unique_ptr<BpeModel>> FromJson(const tj::Json& model,
                                                            const std::string& path);

  // Appends the ids of one pre-token. Thread-safe. Where the model allows it
  // (metaspace_split.h), a long SentencePiece-style word is merged piece by
  // piece, each through the word cache.
  void Tokenize(std::string_view word, std::vector<int32_t>& out) const;

  // For tests: whether Tokenize cuts words at metaspace boundaries.
  bool SplitsAtMetaspace() const { return split_.has_value(); }
  // For tests: what Tokenize gives without the cut and the cache, merging
  // with the chosen loop (bpe_merge.h).
  enum class MergeLoop { kHeap, kBucketed };
  void TokenizeUncut(std::string_view word, MergeLoop loop, std::vector<int32_t>& out) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // nullptr for ids outside the vocabulary.
  const std::string* IdToToken(int32_t id) const;
  // One past the largest id.
  int32_t IdLimit() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  // Pre-tokens repeat a lot in real text; caching their ids skips merging.
  class WordCache {
   public:
    bool Get(std::string_view word, std::vector<int32_t>& out) const;
    void Put(std::string_view word, const int32_t* ids, size_t n) const;

   private:
    static constexpr size_t kShards = 32;
    static constexpr size_t kCapacityPerShard = 8192;
    // The cache lives as long as the tokenizer and is filled by requests:
    // bounded by bytes too, so long words (up to 256 bytes, a few hundred
    // ids each) cannot grow it to hundreds of megabytes. 1 MiB per shard
    // holds the 8192 entries of ordinary words (about 100 bytes each).
    static constexpr size_t kBytesPerShard = size_t{1} << 20;
    struct Shard {
      std::mutex mu;
      absl::flat_hash_map<std::string, std::vector<int32_t>> map;
      size_t bytes = 0;  // keys, ids and a per-entry overhead
    };
    mutable std::array<Shard, kShards> shards_;
  };

  // MergeWord's per-thread buffers (see scratch.h).
  struct Scratch;
  static Scratch& ThreadScratch();
  friend size_t tokenizer_internal::BpeScratchBytes();

  BpeModel() = default;
  // What MetaspaceSplit needs to know of this model.
  MetaspaceSplit::Model SplitModel() const;
  // One piece (or whole word): the cache, else MergeWord.
  void TokenizePiece(std::string_view piece, std::vector<int32_t>& out) const;
  // Builds the symbols of `word` and merges them with `merge_all`.
  using MergeAllFn = void (*)(const bpe::MergeTable&, std::vector<bpe::Symbol>&, bpe::MergeScratch&);
  void MergeWord(std::string_view word, std::vector<int32_t>& out, MergeAllFn merge_all = bpe::MergeAll) const;

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  bpe::MergeTable merges_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool affixes_empty_ = true;  // neither of the two above
  std::array<int32_t, 256> byte_ids_{};  // -1 where <0xXX> is not in the vocabulary
  // The ids of the characters below U+0800 (-1: not a token), which cover
  // the byte-level alphabet and most of Latin text, without hashing.
  static constexpr char32_t kSmallChars = 0x800;
  std::vector<int32_t> small_char_ids_;
  std::optional<MetaspaceSplit> split_;  // set where cutting words is exact
  WordCache cache_;
};

}  // namespace kaon
