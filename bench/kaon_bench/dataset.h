// The prompts a run sends, sampled as `vllm bench serve` samples them.
//   random             lengths uniform in [floor(L(1-r)), ceil(L(1+r))]
//                      (--random-range-ratio r in [0, 1); output at least 1)
//   sharegpt           first turn = prompt, second turn's token count = output
//                      length; pairs with a prompt or output under 4 tokens,
//                      a prompt over 1024 or a total over 2048 are skipped
//   prefix-repetition  N shared prefixes, each followed by random suffixes
//                      (exercises prefix caching)
//   custom             a file of prompts: JSON lines with "prompt" (and
//                      optionally "output_len"), or plain text, one per line
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bench/kaon_bench/token_counter.h"

namespace kaon::bench {

struct SampleRequest {
  std::string prompt;
  int64_t prompt_len = 0;   // tokens, per the dataset's counter
  int64_t output_len = 0;   // max_tokens to ask for
};

struct DatasetOptions {
  std::string name = "random";
  std::string path;
  int num_prompts = 1000;
  uint64_t seed = 0;
  int random_input_len = 1024;
  int random_output_len = 128;
  double random_range_ratio = 0.0;
  std::optional<int> sharegpt_output_len;
  int prefix_len = 256, suffix_len = 256, num_prefixes = 10, prefix_output_len = 128;
  int custom_output_len = 256;
};

// Inclusive [low, high] for length L and ratio r, as vLLM's RandomDataset.
std::pair<int64_t, int64_t> RandomLengthRange(int64_t len, double ratio, bool is_output);

// Text of about `target` tokens: random token ids through a local tokenizer,
// otherwise random words adjusted with the counter. Returns (text, tokens).
std::pair<std::string, int64_t> RandomText(int64_t target, std::mt19937_64& rng, TokenCounter& counter);

// Throws std::runtime_error for an unknown dataset or an unreadable file.
std::vector<SampleRequest> BuildDataset(const DatasetOptions& o, TokenCounter& counter);

}  // namespace kaon::bench
