#include "server/tokenizer/tokenizer.h"

#include <algorithm>
#include <exception>
#include <string>

#include "server/common/files.h"
#include "server/common/status.h"
#include "server/tokenizer/bpe_model.h"
#include "server/tokenizer/decoder.h"
#include "server/tokenizer/normalizer.h"
#include "server/tokenizer/post_processor.h"
#include "server/tokenizer/pre_tokenizer.h"
#include "server/tokenizer/scratch.h"
#include "server/common/utf8.h"

namespace kaon {
namespace {

// tokenizer.json is read whole: real ones are tens of megabytes at most
// (Gemma 3's 262k-token vocabulary: 33 MB).
constexpr uint64_t kMaxTokenizerFileBytes = uint64_t{256} << 20;

// Real tokenizer.json files nest about six levels; components nest through
// "Sequence" and are parsed recursively, so depth bounds that recursion.
constexpr int kMaxJsonDepth = 64;

// Messages quote fields and vocabulary entries from the file: keep them one
// line and short.
absl::Status WithOrigin(const std::string& origin, const absl::Status& s) {
  std::string message(s.message());
  if (message.size() > 400) message = message.substr(0, 397) + "...";
  for (char& c : message) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return absl::Status(s.code(), origin + ": " + message);
}

bool Present(const tj::Json& json, const char* key) {
  return json.contains(key) && !json[key].is_null();
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  KAON_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMaxTokenizerFileBytes));
  return FromJsonString(text, path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJsonString(const std::string& text,
                                                                     const std::string& origin) {
  // Every size in the file is checked before it sizes anything, and the
  // parse is bounded; an allocation failing anyway is still an error here.
  try {
    return Parse(text, origin);
  } catch (const std::exception& e) {  // bad_alloc, length_error
    return absl::ResourceExhaustedError(origin + ": out of memory loading the tokenizer (" + e.what() + ")");
  }
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Parse(const std::string& text, const std::string& origin) {
  // A container that opens deeper than the limit is discarded (not built)
  // and reported once the parse ends.
  bool too_deep = false;
  const tj::Json::parser_callback_t depth_guard = [&too_deep](int depth, tj::Json::parse_event_t event, tj::Json&) {
    const bool opens =
        event == tj::Json::parse_event_t::object_start || event == tj::Json::parse_event_t::array_start;
    if (opens && depth >= kMaxJsonDepth) {
      too_deep = true;
      return false;
    }
    return true;
  };
  tj::Json json = tj::Json::parse(text, depth_guard, /*allow_exceptions=*/false);
  if (too_deep) {
    return absl::InvalidArgumentError(origin + ": JSON nests deeper than " + std::to_string(kMaxJsonDepth) +
                                      " levels");
  }
  if (json.is_discarded()) return absl::InvalidArgumentError(origin + ": not valid JSON");
  if (!json.is_object()) return absl::InvalidArgumentError(origin + ": expected a JSON object");

  std::unique_ptr<Tokenizer> t(new Tokenizer());
  auto parse = [&]() -> absl::Status {
    if (!Present(json, "model")) return tj::Invalid("model", "missing");
    // HF also accepts an untagged model and infers BPE from its merges.
    std::string type = "BPE";
    if (!json["model"].is_object() || json["model"].contains("type") || !json["model"].contains("merges")) {
      KAON_ASSIGN_OR_RETURN(type, tj::Type(json["model"], "model"));
    }
    if (type != "BPE") return tj::Unsupported("model.type", type);
    KAON_ASSIGN_OR_RETURN(t->model_, BpeModel::FromJson(json["model"], "model"));
    if (Present(json, "normalizer")) {
      KAON_ASSIGN_OR_RETURN(t->normalizer_, ParseNormalizer(json["normalizer"], "normalizer"));
    }
    if (Present(json, "pre_tokenizer")) {
      KAON_ASSIGN_OR_RETURN(t->pre_tokenizer_,
                            ParsePreTokenizer(json["pre_tokenizer"], "pre_tokenizer"));
    }
    if (Present(json, "post_processor")) {
      KAON_ASSIGN_OR_RETURN(t->post_processor_,
                            ParsePostProcessor(json["post_processor"], "post_processor"));
    }
    if (Present(json, "decoder")) {
      KAON_ASSIGN_OR_RETURN(t->decoder_, ParseDecoder(json["decoder"], "decoder"));
    }
    if (json.contains("added_tokens")) {
      KAON_ASSIGN_OR_RETURN(t->added_, AddedVocabulary::FromJson(json["added_tokens"], "added_tokens",
                                                                 t->normalizer_.get()));
    }
    // "truncation" and "padding" are ignored: the server never truncates a
    // prompt silently, and padding does not apply to single sequences.
    return absl::OkStatus();
  };
  if (absl::Status s = parse(); !s.ok()) return WithOrigin(origin, s);
  return t;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromModelDir(const std::string& dir) {
  KAON_ASSIGN_OR_RETURN(auto t, FromFile(JoinPath(dir, "tokenizer.json")));
  const std::string config_path = JoinPath(dir, "tokenizer_config.json");
  if (FileExists(config_path)) {
    KAON_ASSIGN_OR_RETURN(nlohmann::ordered_json json, ReadJsonFile(config_path));
    KAON_ASSIGN_OR_RETURN(t->config_, ParseTokenizerConfig(json, config_path));
    KAON_RETURN_IF_ERROR(t->ApplyBosEosConfig(config_path));
  }
  return t;
}

absl::Status Tokenizer::ApplyBosEosConfig(const std::string& config_path) {
  // transformers' Llama, CodeLlama and Gemma tokenizers rebuild the
  // post-processor from add_bos_token (default true) and add_eos_token
  // (default false), whatever tokenizer.json says; other classes keep it.
  static constexpr const char* kRebuilding[] = {"LlamaTokenizer",     "LlamaTokenizerFast",
                                                "CodeLlamaTokenizer", "CodeLlamaTokenizerFast",
                                                "GemmaTokenizer",     "GemmaTokenizerFast"};
  const auto& cls = config_.tokenizer_class;
  if (!cls || std::find(std::begin(kRebuilding), std::end(kRebuilding), *cls) == std::end(kRebuilding)) {
    return absl::OkStatus();
  }
  auto special_id = [&](const std::optional<std::string>& token, const char* field) -> absl::StatusOr<int32_t> {
    std::optional<int32_t> id = token ? TokenToId(*token) : std::nullopt;
    if (!id) {
      return absl::InvalidArgumentError(config_path + ": " + field + " is requested but " +
                                        (token ? "\"" + *token + "\" is not in the vocabulary" : "not set"));
    }
    return *id;
  };
  std::vector<int32_t> before, after;
  if (config_.add_bos_token.value_or(true)) {
    KAON_ASSIGN_OR_RETURN(int32_t bos, special_id(config_.bos_token, "add_bos_token"));
    before.push_back(bos);
  }
  if (config_.add_eos_token.value_or(false)) {
    KAON_ASSIGN_OR_RETURN(int32_t eos, special_id(config_.eos_token, "add_eos_token"));
    after.push_back(eos);
  }
  post_processor_ = MakeTemplatePostProcessor(std::move(before), std::move(after));
  return absl::OkStatus();
}

namespace {

// EncodeSegment's pre-token list, per thread (see scratch.h).
std::vector<PreToken>& PreTokenScratch() {
  thread_local std::vector<PreToken> words;
  return words;
}

}  // namespace

namespace tokenizer_internal {
size_t PreTokenScratchBytes() {
  size_t n = PreTokenScratch().capacity() * sizeof(PreToken);
  for (const PreToken& w : PreTokenScratch()) n += w.text.capacity();
  return n;
}
}  // namespace tokenizer_internal

size_t ThreadScratchBytes() {
  return tokenizer_internal::PreTokenScratchBytes() + tokenizer_internal::BpeScratchBytes() +
         tokenizer_internal::RegexScratchBytes();
}

void Tokenizer::EncodeSegment(std::string text, bool at_start, std::vector<int32_t>& ids) const {
  std::vector<PreToken>& words = PreTokenScratch();
  words.clear();
  words.push_back(PreToken{std::move(text), at_start});
  if (pre_tokenizer_) pre_tokenizer_->Apply(words);
  for (const PreToken& w : words) model_->Tokenize(w.text, ids);
  // The words (the whole segment's text) go now, and a list grown by a huge
  // input goes with them.
  TrimScratch(words);
}

std::vector<int32_t> Tokenizer::Encode(std::string_view input, bool add_special_tokens) const {
  std::string repaired;
  if (!utf8::IsValid(input)) {
    repaired = utf8::Lossy(input);
    input = repaired;
  }
  std::vector<int32_t> ids;
  std::vector<Segment> raw;
  added_.SplitRaw(input, raw);
  std::vector<Segment> parts;
  for (Segment& seg : raw) {
    if (seg.token_id) {
      ids.push_back(*seg.token_id);
      continue;
    }
    if (normalizer_) normalizer_->Normalize(seg.text);
    const bool at_start = seg.offset == 0;
    if (!added_.HasNormalizedTokens()) {
      if (!seg.text.empty()) EncodeSegment(std::move(seg.text), at_start, ids);
      continue;
    }
    parts.clear();
    added_.SplitNormalized(seg.text, parts);
    for (Segment& p : parts) {
      if (p.token_id) {
        ids.push_back(*p.token_id);
      } else if (!p.text.empty()) {
        EncodeSegment(std::move(p.text), at_start && p.offset == 0, ids);
      }
    }
  }
  if (add_special_tokens && post_processor_) post_processor_->Process(ids);
  return ids;
}

const std::string* Tokenizer::DecodeToken(int32_t id, bool skip_special_tokens) const {
  const std::string* token = nullptr;
  if (const AddedToken* a = added_.FindById(id)) {
    token = &a->content;
  } else {
    token = model_->IdToToken(id);
  }
  if (token != nullptr && skip_special_tokens && added_.IsSpecialContent(*token)) return nullptr;
  return token;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (const std::string* t = DecodeToken(id, skip_special_tokens)) tokens.push_back(*t);
  }
  if (!decoder_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  decoder_->DecodeChain(tokens);
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

int32_t Tokenizer::VocabSize() const {
  int32_t n = model_->IdLimit();
  for (const AddedToken& a : added_.tokens()) n = std::max(n, a.id + 1);
  return n;
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (auto id = added_.FindByContent(token)) return id;
  return model_->TokenToId(token);
}

std::string Tokenizer::IdToToken(int32_t id) const {
  const std::string* t = DecodeToken(id, false);
  return t ? *t : std::string();
}

bool Tokenizer::IsSpecial(int32_t id) const {
  const AddedToken* a = added_.FindById(id);
  return a != nullptr && a->special;
}

}  // namespace kaon
