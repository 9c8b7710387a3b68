// Per-thread scratch buffers of the tokenizer (the pre-token list, BPE's
// symbols and merge queue, the regex match state). They are reused across
// calls so that ordinary inputs allocate nothing per word, but given back
// after an input that grew them past kScratchKeepBytes: without that, one
// 16 MB prompt leaves hundreds of megabytes pinned to every thread that
// tokenized it.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace kaon {

// A few thousand words' worth: what normal prompts need, kept for reuse.
inline constexpr size_t kScratchKeepBytes = size_t{64} << 10;

template <typename T>
void TrimScratch(std::vector<T>& v) {
  v.clear();
  if (v.capacity() * sizeof(T) > kScratchKeepBytes) std::vector<T>().swap(v);
}

inline void TrimScratch(std::string& s) {
  s.clear();
  if (s.capacity() > kScratchKeepBytes) std::string().swap(s);
}

// For tests: the bytes the calling thread's tokenizer scratch holds now
// (vector and string capacities; for the regex match state, the longest input
// it has matched since it was last made fresh, which bounds what its JIT
// stack and match frames hold). Defined in tokenizer.cc.
size_t ThreadScratchBytes();

namespace tokenizer_internal {
// The parts ThreadScratchBytes adds up, one per file that owns scratch.
size_t PreTokenScratchBytes();  // tokenizer.cc
size_t BpeScratchBytes();       // bpe_model.cc
size_t RegexScratchBytes();     // regex.cc
}  // namespace tokenizer_internal

}  // namespace kaon
