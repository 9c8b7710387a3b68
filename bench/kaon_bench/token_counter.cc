#include "bench/kaon_bench/token_counter.h"

#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "nlohmann/json.hpp"
#include "server/tokenizer/tokenizer.h"

namespace kaon::bench {
namespace {

using Json = nlohmann::json;

class LocalTokenCounter : public TokenCounter {
 public:
  LocalTokenCounter(std::unique_ptr<Tokenizer> tok, std::string path) : tok_(std::move(tok)), path_(std::move(path)) {}
  int64_t Count(const std::string& text) override {
    return static_cast<int64_t>(tok_->Encode(text, /*add_special_tokens=*/false).size());
  }
  std::string Describe() const override { return "local tokenizer " + path_; }
  const Tokenizer* local() const override { return tok_.get(); }

 private:
  std::unique_ptr<Tokenizer> tok_;
  std::string path_;
};

class ServerTokenCounter : public TokenCounter {
 public:
  ServerTokenCounter(HttpPostFn post, std::string model, std::string describe)
      : post_(std::move(post)), model_(std::move(model)), describe_(std::move(describe)) {}
  std::optional<int64_t> TryCount(const std::string& text) {
    Json body;
    body["model"] = model_;
    body["prompt"] = text;
    body["add_special_tokens"] = false;
    auto resp = post_("/tokenize", body.dump(-1, ' ', false, Json::error_handler_t::replace));
    if (!resp) return std::nullopt;
    Json j = Json::parse(*resp, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    if (j.contains("count") && j["count"].is_number_integer()) return j["count"].get<int64_t>();
    if (j.contains("tokens") && j["tokens"].is_array()) return static_cast<int64_t>(j["tokens"].size());
    return std::nullopt;
  }
  int64_t Count(const std::string& text) override {
    auto n = TryCount(text);
    if (!n) throw std::runtime_error(describe_ + " failed while sampling the dataset");
    return *n;
  }
  std::string Describe() const override { return describe_; }

 private:
  HttpPostFn post_;
  std::string model_;
  std::string describe_;
};

class WordTokenCounter : public TokenCounter {
 public:
  int64_t Count(const std::string& text) override {
    std::istringstream in(text);
    std::string w;
    int64_t n = 0;
    while (in >> w) ++n;
    return n;
  }
  std::string Describe() const override { return "approximate (one token per word; pass --tokenizer for exact counts)"; }
  bool exact() const override { return false; }
};

}  // namespace

std::unique_ptr<TokenCounter> MakeLocalTokenCounter(const std::string& path) {
  std::error_code ec;
  auto tok = std::filesystem::is_directory(path, ec) ? Tokenizer::FromModelDir(path) : Tokenizer::FromFile(path);
  if (!tok.ok()) throw std::runtime_error("--tokenizer " + path + ": " + std::string(tok.status().message()));
  return std::make_unique<LocalTokenCounter>(std::move(*tok), path);
}

std::unique_ptr<TokenCounter> MakeServerTokenCounter(HttpPostFn post, const std::string& model,
                                                     const std::string& describe) {
  auto c = std::make_unique<ServerTokenCounter>(std::move(post), model, describe);
  if (!c->TryCount("hello world")) return nullptr;
  return c;
}

std::unique_ptr<TokenCounter> MakeWordTokenCounter() { return std::make_unique<WordTokenCounter>(); }

}  // namespace kaon::bench
