#include "bench/kaon_bench/dataset.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "nlohmann/json.hpp"
#include "server/tokenizer/tokenizer.h"

namespace kaon::bench {
namespace {

using Json = nlohmann::json;

// Plain words for servers we can only count through /tokenize (or not at
// all): every tokenizer splits them predictably, unlike random ids.
const char* const kWords[] = {
    "time", "person", "year", "way", "day", "thing", "man", "world", "life", "hand", "part", "child", "eye",
    "woman", "place", "work", "week", "case", "point", "number", "group", "problem", "fact", "good", "new",
    "first", "last", "long", "great", "little", "own", "other", "old", "right", "big", "high", "small",
    "large", "next", "early", "young", "few", "public", "bad", "same", "able", "to", "of", "in", "for",
    "on", "with", "at", "by", "from", "up", "about", "into", "over", "after", "the", "and", "a", "that"};
constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

std::string Words(int64_t n, std::mt19937_64& rng) {
  std::uniform_int_distribution<size_t> pick(0, kNumWords - 1);
  std::string s;
  for (int64_t i = 0; i < n; ++i) {
    if (i) s += ' ';
    s += kWords[pick(rng)];
  }
  return s;
}

// Drops bytes that are not part of a valid UTF-8 sequence: random ids can
// decode to partial characters, which JSON encoding would replace with U+FFFD
// and so change the token count the server sees.
std::string ValidUtf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    // U+FFFD stands for bytes a decoder could not place; it re-encodes as several tokens.
    if (ok && len == 3 && s.compare(i, 3, "\xEF\xBF\xBD") == 0) {
      i += 3;
      continue;
    }
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      ++i;
    }
  }
  return out;
}

// Ids that decode on their own to whole characters: byte tokens (partial
// UTF-8) would decode to U+FFFD and re-encode to a different count. Computed
// once per tokenizer.
const std::vector<int32_t>& WholeCharacterIds(const Tokenizer& tok) {
  static const Tokenizer* cached_for = nullptr;
  static std::vector<int32_t> ids;
  if (cached_for == &tok) return ids;
  ids.clear();
  for (int32_t id = 0; id < tok.VocabSize(); ++id) {
    if (tok.IsSpecial(id) || tok.IdToToken(id).empty()) continue;
    const int32_t one[1] = {id};
    const std::string text = tok.Decode(one, true);
    if (!text.empty() && ValidUtf8(text) == text) ids.push_back(id);
  }
  if (ids.empty()) throw std::runtime_error("the tokenizer has no tokens that decode to whole characters");
  cached_for = &tok;
  return ids;
}

std::pair<std::string, int64_t> RandomTokensText(int64_t target, std::mt19937_64& rng, const Tokenizer& tok) {
  const std::vector<int32_t>& pool = WholeCharacterIds(tok);
  std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
  std::vector<int32_t> ids;
  while (static_cast<int64_t>(ids.size()) < target + target / 4 + 4) ids.push_back(pool[pick(rng)]);
  // Decoding and re-encoding merges some ids; keep the first `target` of the
  // re-encoded sequence and check again, as vLLM's gen_prompt_decode_to_target_len.
  std::string text = ValidUtf8(tok.Decode(ids, true));
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::vector<int32_t> re = tok.Encode(text, false);
    if (static_cast<int64_t>(re.size()) == target) break;
    if (static_cast<int64_t>(re.size()) > target) {
      re.resize(static_cast<size_t>(target));
      text = ValidUtf8(tok.Decode(re, true));
    } else {
      text += ' ';
      text += Words(target - static_cast<int64_t>(re.size()), rng);
    }
  }
  return {text, static_cast<int64_t>(tok.Encode(text, false).size())};
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read --dataset-path " + path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::vector<SampleRequest> RandomDataset(const DatasetOptions& o, TokenCounter& counter, std::mt19937_64& rng) {
  if (o.random_range_ratio < 0 || o.random_range_ratio >= 1)
    throw std::runtime_error("--random-range-ratio must be in [0, 1)");
  auto [in_lo, in_hi] = RandomLengthRange(o.random_input_len, o.random_range_ratio, false);
  auto [out_lo, out_hi] = RandomLengthRange(o.random_output_len, o.random_range_ratio, true);
  std::uniform_int_distribution<int64_t> in_len(in_lo, in_hi), out_len(out_lo, out_hi);
  std::vector<SampleRequest> out;
  for (int i = 0; i < o.num_prompts; ++i) {
    SampleRequest r;
    const int64_t target = in_len(rng);
    r.output_len = out_len(rng);
    std::tie(r.prompt, r.prompt_len) = RandomText(target, rng, counter);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<SampleRequest> ShareGptDataset(const DatasetOptions& o, TokenCounter& counter, std::mt19937_64& rng) {
  std::ifstream in(o.path);
  if (!in) throw std::runtime_error("cannot read --dataset-path " + o.path);
  Json data = Json::parse(in, nullptr, false);
  if (!data.is_array()) throw std::runtime_error(o.path + ": expected a JSON array of ShareGPT conversations");
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const Json& item : data) {
    if (!item.is_object() || !item.contains("conversations")) continue;
    const Json& conv = item["conversations"];
    if (!conv.is_array() || conv.size() < 2) continue;
    if (!conv[0].contains("value") || !conv[1].contains("value")) continue;
    if (!conv[0]["value"].is_string() || !conv[1]["value"].is_string()) continue;
    pairs.emplace_back(conv[0]["value"].get<std::string>(), conv[1]["value"].get<std::string>());
  }
  std::shuffle(pairs.begin(), pairs.end(), rng);
  std::vector<SampleRequest> out;
  for (const auto& [prompt, completion] : pairs) {
    if (static_cast<int>(out.size()) >= o.num_prompts) break;
    SampleRequest r;
    r.prompt = prompt;
    r.prompt_len = counter.Count(prompt);
    r.output_len = o.sharegpt_output_len ? *o.sharegpt_output_len : counter.Count(completion);
    // vLLM's is_valid_sequence filters.
    if (r.prompt_len < 4 || (!o.sharegpt_output_len && r.output_len < 4)) continue;
    if (r.prompt_len > 1024 || r.prompt_len + r.output_len > 2048) continue;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<SampleRequest> PrefixRepetitionDataset(const DatasetOptions& o, TokenCounter& counter,
                                                   std::mt19937_64& rng) {
  if (o.num_prefixes < 1) throw std::runtime_error("--prefix-repetition-num-prefixes must be positive");
  const int per_prefix = std::max(1, o.num_prompts / o.num_prefixes);
  std::vector<SampleRequest> out;
  for (int p = 0; p < o.num_prefixes; ++p) {
    auto [prefix, prefix_tokens] = RandomText(o.prefix_len, rng, counter);
    for (int s = 0; s < per_prefix; ++s) {
      auto [suffix, suffix_tokens] = RandomText(o.suffix_len, rng, counter);
      SampleRequest r;
      r.prompt = prefix + " " + suffix;
      r.prompt_len = counter.Count(r.prompt);
      r.output_len = o.prefix_output_len;
      out.push_back(std::move(r));
    }
  }
  std::shuffle(out.begin(), out.end(), rng);
  if (static_cast<int>(out.size()) > o.num_prompts) out.resize(static_cast<size_t>(o.num_prompts));
  return out;
}

std::vector<SampleRequest> CustomDataset(const DatasetOptions& o, TokenCounter& counter, std::mt19937_64& rng) {
  if (o.path.empty()) throw std::runtime_error("--dataset-name custom needs --dataset-path");
  std::vector<SampleRequest> all;
  for (const std::string& line : ReadLines(o.path)) {
    SampleRequest r;
    r.output_len = o.custom_output_len;
    Json j = Json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("prompt") && j["prompt"].is_string()) {
      r.prompt = j["prompt"].get<std::string>();
      if (j.contains("output_len") && j["output_len"].is_number_integer()) r.output_len = j["output_len"].get<int64_t>();
    } else {
      r.prompt = line;
    }
    r.prompt_len = counter.Count(r.prompt);
    all.push_back(std::move(r));
  }
  if (all.empty()) throw std::runtime_error(o.path + ": no prompts");
  // File order is kept; the file is cycled when more prompts are asked for.
  std::vector<SampleRequest> out;
  for (int i = 0; i < o.num_prompts; ++i) out.push_back(all[static_cast<size_t>(i) % all.size()]);
  return out;
}

}  // namespace

std::pair<int64_t, int64_t> RandomLengthRange(int64_t len, double ratio, bool is_output) {
  int64_t lo = static_cast<int64_t>(std::floor(static_cast<double>(len) * (1.0 - ratio)));
  const int64_t hi = static_cast<int64_t>(std::ceil(static_cast<double>(len) * (1.0 + ratio)));
  if (is_output) lo = std::max<int64_t>(lo, 1);
  return {lo, std::max(lo, hi)};
}

std::pair<std::string, int64_t> RandomText(int64_t target, std::mt19937_64& rng, TokenCounter& counter) {
  if (target <= 0) return {"", 0};
  if (const Tokenizer* tok = counter.local()) return RandomTokensText(target, rng, *tok);
  // One random word list, then a binary search for the longest prefix with
  // at most `target` tokens: exact whenever a word boundary allows it.
  std::vector<std::string> words;
  std::uniform_int_distribution<size_t> pick(0, kNumWords - 1);
  for (int64_t i = 0; i < 2 * target + 8; ++i) words.push_back(kWords[pick(rng)]);
  auto prefix = [&](int64_t n) {
    std::string s;
    for (int64_t i = 0; i < n; ++i) {
      if (i) s += ' ';
      s += words[static_cast<size_t>(i)];
    }
    return s;
  };
  if (!counter.exact()) return {prefix(target), target};
  int64_t lo = 1, hi = static_cast<int64_t>(words.size());
  int64_t best_n = 1, best_count = counter.Count(prefix(1));
  while (lo <= hi) {
    const int64_t mid = (lo + hi) / 2;
    const int64_t c = counter.Count(prefix(mid));
    if (c <= target) {
      best_n = mid;
      best_count = c;
      if (c == target) break;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return {prefix(best_n), best_count};
}

std::vector<SampleRequest> BuildDataset(const DatasetOptions& o, TokenCounter& counter) {
  std::mt19937_64 rng(o.seed);
  if (o.name == "random") return RandomDataset(o, counter, rng);
  if (o.name == "sharegpt") return ShareGptDataset(o, counter, rng);
  if (o.name == "prefix-repetition") return PrefixRepetitionDataset(o, counter, rng);
  if (o.name == "custom") return CustomDataset(o, counter, rng);
  throw std::runtime_error("unknown --dataset-name " + o.name + " (random, sharegpt, prefix-repetition, custom)");
}

}  // namespace kaon::bench
