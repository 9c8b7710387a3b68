#include "server/api/logprobs_json.h"

#include <algorithm>
#include <cmath>

#include "server/tokenizer/tokenizer.h"

namespace kaon::api {
namespace {

using Json = nlohmann::ordered_json;

Json Bytes(const std::string& s) {
  Json b = Json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

}  // namespace

std::string TokenText(const Tokenizer& tokenizer, int32_t id) {
  const int32_t ids[1] = {id};
  return tokenizer.Decode(ids, /*skip_special_tokens=*/false);
}

double JsonLogprob(float logprob) {
  if (std::isnan(logprob)) return -9999.0;
  return std::max(static_cast<double>(logprob), -9999.0);
}

Json ChatLogprobEntry(const Tokenizer& tokenizer, const SampleResult& sample) {
  const std::string text = TokenText(tokenizer, sample.token);
  Json e = Json::object();
  e["token"] = text;
  e["logprob"] = JsonLogprob(sample.logprob);
  e["bytes"] = Bytes(text);
  Json top = Json::array();
  for (const TokenLogprob& alt : sample.top) {
    const std::string alt_text = TokenText(tokenizer, alt.token);
    Json a = Json::object();
    a["token"] = alt_text;
    a["logprob"] = JsonLogprob(alt.logprob);
    a["bytes"] = Bytes(alt_text);
    top.push_back(std::move(a));
  }
  e["top_logprobs"] = std::move(top);
  return e;
}

int64_t CodePointCount(const std::string& text) {
  int64_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

void CompletionLogprobs::Push(const std::string& text, Json logprob, Json top) {
  tokens_.push_back(text);
  token_logprobs_.push_back(std::move(logprob));
  top_logprobs_.push_back(std::move(top));
  text_offset_.push_back(offset_);
  offset_ += CodePointCount(text);
}

void CompletionLogprobs::Add(const Tokenizer& tokenizer, const SampleResult& sample) {
  Json top = Json::object();
  for (const TokenLogprob& alt : sample.top) {
    const std::string alt_text = TokenText(tokenizer, alt.token);
    if (!top.contains(alt_text)) top[alt_text] = JsonLogprob(alt.logprob);
  }
  const std::string text = TokenText(tokenizer, sample.token);
  // The sampled token is always listed, as vLLM and OpenAI do.
  if (!top.contains(text)) top[text] = JsonLogprob(sample.logprob);
  Push(text, JsonLogprob(sample.logprob), std::move(top));
}

void CompletionLogprobs::AddUnscored(const Tokenizer& tokenizer, int32_t id) {
  Push(TokenText(tokenizer, id), nullptr, nullptr);
}

void CompletionLogprobs::Skip(const std::string& text) { offset_ += CodePointCount(text); }

Json CompletionLogprobs::ToJson() const {
  Json j = Json::object();
  j["tokens"] = tokens_;
  j["token_logprobs"] = token_logprobs_;
  j["top_logprobs"] = top_logprobs_;
  j["text_offset"] = text_offset_;
  return j;
}

}  // namespace kaon::api
