// Cutting the one huge "word" of SentencePiece-style BPE tokenizers (Llama 2,
// Mistral, Gemma: the normalizer turns spaces into "▁" and no pre-tokenizer
// splits on them) into pieces that are merged separately, with the same ids
// as merging the whole word.
//
// Cuts go just before a "▁" that follows a character c other than "▁". Why
// that is exact:
// - Symbols. Each character becomes its token, its byte tokens or the
//   unknown token regardless of its neighbours, except that consecutive
//   unknowns fuse; "▁" is a token, so nothing fuses across a cut.
// - Merges. At a cut, the right part's first symbol y always has a string
//   starting with "▁" (merges only concatenate), and the left part's last
//   symbol x one ending with the string of c's leaf: c itself, c's last byte
//   token "<0xHH>", or the unknown token. A merge across the cut needs a
//   listed pair (a, b) with a = x and b = y: b starts with "▁" and a does not
//   end with "▁" (no leaf does). Call such an a "bad". No cut goes after the
//   last character of a bad a (Gemma 3 lists ">" "▁</"), and the split is
//   refused if a bad a could end with a byte token or the unknown token. So
//   no merge ever crosses a cut, and HF's loop (lowest rank, then leftmost)
//   pops each side's candidates in the order it would pop them alone:
//   positions shift by a constant, and a stale candidate at the left edge
//   finds a pair with no merge where alone it finds no neighbour. Each piece
//   gets the ids it gets as a word of its own.
// - Conditions, checked at load (Builder::Finish): no continuing_subword_prefix
//   or end_of_word_suffix (they depend on the position in the word); no
//   ignore_merges (a piece found whole in the vocabulary would become one id);
//   "▁" in the vocabulary; every character yields a symbol (an unknown token,
//   or byte fallback with all 256 byte tokens: a dropped character would let
//   the symbol before it, perhaps a "▁", end the left part); one string per
//   id (strings decide the check, ids the merges). BPE dropout is refused at
//   load anyway.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kaon {

class MetaspaceSplit {
 public:
  static constexpr std::string_view kMarker = "\xE2\x96\x81";  // U+2581

  // What of the BPE model, besides its merges, decides whether cuts are exact.
  struct Model {
    bool marker_in_vocab = false;
    bool ids_unique = false;
    bool ignore_merges = false;
    bool has_affixes = false;  // continuing_subword_prefix or end_of_word_suffix
    // The unknown token's string when the vocabulary has it.
    std::optional<std::string> unk;
    // The "<0xHH>" byte tokens the vocabulary has when byte_fallback is on.
    std::vector<std::string> byte_tokens;
  };

  // Sees the merges one by one while the model loads.
  class Builder {
   public:
    void AddMerge(std::string_view a, std::string_view b);
    // nullopt where cuts would not be exact.
    std::optional<MetaspaceSplit> Finish(const Model& model) const;

   private:
    std::vector<std::string> bad_;  // the bad a's
  };

  // Calls piece(text) for each piece of `word`, in order; they concatenate
  // to `word`.
  template <typename F>
  void ForEachPiece(std::string_view word, F&& piece) const {
    size_t start = 0;
    for (size_t at = word.find(kMarker, 1); at != std::string_view::npos; at = word.find(kMarker, at + 1)) {
      if (CutBefore(word, at)) {
        piece(word.substr(start, at - start));
        start = at;
      }
    }
    piece(word.substr(start));
  }

 private:
  explicit MetaspaceSplit(std::vector<std::string> unsafe_last_chars)
      : unsafe_last_chars_(std::move(unsafe_last_chars)) {}
  // Whether a cut may go at `at` (where a marker starts, at > 0).
  bool CutBefore(std::string_view word, size_t at) const;

  // The last characters of the bad a's (sorted, unique): the right side of
  // a bad merge can follow them, so no cut goes after them.
  std::vector<std::string> unsafe_last_chars_;
};

}  // namespace kaon
