// Logprobs in OpenAI's two shapes: completions' parallel lists and chat's
// list of entries. Token strings are Tokenizer::Decode of the single id with
// special tokens kept (vLLM's choice too); a token that is part of a
// multi-byte character therefore shows as U+FFFD, and chat's "bytes" are the
// UTF-8 bytes of that string.
#pragma once

#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"
#include "server/backend/sampling.h"

namespace kaon {
class Tokenizer;
}

namespace kaon::api {

std::string TokenText(const Tokenizer& tokenizer, int32_t id);

// JSON has no -inf: masked tokens report -9999.0, as vLLM does.
double JsonLogprob(float logprob);

// {"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}...]}
nlohmann::ordered_json ChatLogprobEntry(const Tokenizer& tokenizer, const SampleResult& sample);

// Completions' {"tokens", "token_logprobs", "top_logprobs", "text_offset"},
// grown token by token. text_offset counts Unicode code points of the text
// before each token (the echoed prompt included), as Python's len() does.
class CompletionLogprobs {
 public:
  explicit CompletionLogprobs(int64_t start_offset = 0) : offset_(start_offset) {}

  // A scored token: its logprob and a {token: logprob} map of the top
  // alternatives plus the token itself.
  void Add(const Tokenizer& tokenizer, const SampleResult& sample);
  // The first prompt token, which has no logprob (null in both lists).
  void AddUnscored(const Tokenizer& tokenizer, int32_t id);
  // Advances the offset without a token (text that carries no logprobs).
  void Skip(const std::string& text);

  nlohmann::ordered_json ToJson() const;
  bool empty() const { return tokens_.empty(); }
  int64_t offset() const { return offset_; }

 private:
  void Push(const std::string& text, nlohmann::ordered_json logprob, nlohmann::ordered_json top);

  nlohmann::ordered_json tokens_ = nlohmann::ordered_json::array();
  nlohmann::ordered_json token_logprobs_ = nlohmann::ordered_json::array();
  nlohmann::ordered_json top_logprobs_ = nlohmann::ordered_json::array();
  nlohmann::ordered_json text_offset_ = nlohmann::ordered_json::array();
  int64_t offset_;
};

// Unicode code points in UTF-8 text (continuation bytes not counted).
int64_t CodePointCount(const std::string& text);

}  // namespace kaon::api
