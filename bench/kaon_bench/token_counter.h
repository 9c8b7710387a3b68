// Counting prompt tokens for dataset sampling, from the best source at hand:
// a local tokenizer.json (kaon's tokenizer, exact and fast), the server's
// /tokenize endpoint (exact, one round trip per text), or a words-as-tokens
// estimate when neither exists (then reported as approximate). The tokens the
// metrics use come from the server's usage, not from here.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kaon {
class Tokenizer;
}

namespace kaon::bench {

class TokenCounter {
 public:
  virtual ~TokenCounter() = default;
  // Tokens of `text` without special tokens (BOS etc.).
  virtual int64_t Count(const std::string& text) = 0;
  virtual std::string Describe() const = 0;
  virtual bool exact() const { return true; }
  // Only local tokenizers: random token ids decoded to text (vLLM's random dataset).
  virtual const kaon::Tokenizer* local() const { return nullptr; }
};

// path: a tokenizer.json file or a model directory holding one. Throws std::runtime_error.
std::unique_ptr<TokenCounter> MakeLocalTokenCounter(const std::string& path);

// post(path, body) -> response body, or nullopt when the request failed. The
// counter probes once; nullptr when the server has no usable /tokenize.
// `describe`: how the report names it (kaon-grpc answers with gRPC Tokenize).
using HttpPostFn = std::function<std::optional<std::string>(const std::string& path, const std::string& body)>;
std::unique_ptr<TokenCounter> MakeServerTokenCounter(HttpPostFn post, const std::string& model,
                                                     const std::string& describe = "server /tokenize");

std::unique_ptr<TokenCounter> MakeWordTokenCounter();

}  // namespace kaon::bench
