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
#include "server/tokenizer/json_fields.h"

namespace kaon {

class BpeModel {
 public:
  // `model` is tokenizer.json's "model" object; `path` names it in errors.
  static absl::StatusOr<std::unique_ptr<BpeModel>> FromJson(const tj::Json& model,
                                                            const std::string& path);

  // Appends the ids of one pre-token. Thread-safe.
  void Tokenize(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // nullptr for ids outside the vocabulary.
  const std::string* IdToToken(int32_t id) const;
  // One past the largest id.
  int32_t IdLimit() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  struct MergeTarget {
    int32_t rank;
    int32_t new_id;
  };
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    uint32_t len;  // 0 once merged into its left neighbour
  };

  // Pre-tokens repeat a lot in real text; caching their ids skips merging.
  class WordCache {
   public:
    bool Get(std::string_view word, std::vector<int32_t>& out) const;
    void Put(std::string_view word, const int32_t* ids, size_t n) const;

   private:
    static constexpr size_t kShards = 32;
    static constexpr size_t kCapacityPerShard = 8192;
    struct Shard {
      std::mutex mu;
      absl::flat_hash_map<std::string, std::vector<int32_t>> map;
    };
    mutable std::array<Shard, kShards> shards_;
  };

  BpeModel() = default;
  void MergeWord(std::string_view word, std::vector<int32_t>& out) const;
  void MergeAll(std::vector<Symbol>& symbols) const;
  const MergeTarget* FindMerge(int32_t a, int32_t b) const;

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  absl::flat_hash_map<uint64_t, MergeTarget> merges_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  std::array<int32_t, 256> byte_ids_{};  // -1 where <0xXX> is not in the vocabulary
  WordCache cache_;
};

}  // namespace kaon
