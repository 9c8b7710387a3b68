#include "server/tokenizer/decoder.h"

#include "server/common/status.h"
#include "server/tokenizer/byte_level.h"
#include "server/tokenizer/replace_pattern.h"
#include "server/common/utf8.h"

namespace kaon {
namespace {

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->DecodeChain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

class ReplaceDecoder : public Decoder {
 public:
  explicit ReplaceDecoder(ReplacePattern pattern) : pattern_(std::move(pattern)) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) pattern_.Apply(t);
  }

 private:
  ReplacePattern pattern_;
};

class ByteLevelDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      const size_t before = bytes.size();
      if (!byte_level::Decode(t, bytes)) {
        // Tokens outside the byte alphabet (added tokens) pass through as is.
        bytes.resize(before);
        bytes += t;
      }
    }
    tokens.assign(1, utf8::Lossy(bytes));
  }
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first)
      : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (size_t p = 0; p < t.size();) {
        if (t.compare(p, replacement_.size(), replacement_) == 0) {
          // HF drops every replacement character of the first token.
          if (!(i == 0 && strip_first_)) out.push_back(' ');
          p += replacement_.size();
        } else {
          out.push_back(t[p++]);
        }
      }
      tokens[i].swap(out);
    }
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Rust's u8::from_str_radix(s, 16) on two characters, which accepts "+F".
int ParseByte(std::string_view s) {
  if (s[0] == '+') return HexDigit(s[1]);
  const int hi = HexDigit(s[0]), lo = HexDigit(s[1]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

class ByteFallbackDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (utf8::IsValid(pending)) {
        out.push_back(pending);
      } else {
        // HF emits one replacement character per byte of an invalid run.
        for (size_t i = 0; i < pending.size(); ++i) out.push_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        byte = ParseByte(std::string_view(t).substr(3, 2));
      }
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }
};

class FuseDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop)
      : content_(content), start_(start), stop_(stop) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      std::vector<size_t> bounds;  // byte offset of each character, plus the end
      std::vector<char32_t> chars;
      for (size_t i = 0; i < t.size();) {
        bounds.push_back(i);
        chars.push_back(utf8::Next(t, i));
      }
      bounds.push_back(t.size());
      size_t start_cut = 0;
      for (size_t i = 0; i < start_ && i < chars.size() && chars[i] == content_; ++i) start_cut = i + 1;
      size_t stop_cut = chars.size();
      for (size_t i = 0; i < stop_ && i < chars.size(); ++i) {
        const size_t index = chars.size() - i - 1;
        if (chars[index] != content_) break;
        stop_cut = index;
      }
      if (stop_cut < start_cut) stop_cut = start_cut;
      t = t.substr(bounds[start_cut], bounds[stop_cut] - bounds[start_cut]);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Decoder>> ParseDecoder(const tj::Json& json, const std::string& path) {
  KAON_ASSIGN_OR_RETURN(std::string type, tj::Type(json, path));
  if (type == "Sequence") {
    KAON_ASSIGN_OR_RETURN(const tj::Json* list, tj::Array(json, "decoders", path));
    std::vector<std::unique_ptr<Decoder>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      KAON_ASSIGN_OR_RETURN(auto part, ParseDecoder((*list)[i], tj::Index(tj::Sub(path, "decoders"), i)));
      parts.push_back(std::move(part));
    }
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    KAON_ASSIGN_OR_RETURN(std::string replacement, tj::StringOr(json, "replacement", path, "\u2581"));
    bool strip_first = true;
    if (json.contains("prepend_scheme") && !json["prepend_scheme"].is_null()) {
      KAON_ASSIGN_OR_RETURN(std::string scheme, tj::String(json, "prepend_scheme", path));
      strip_first = scheme != "never";
    } else {
      KAON_ASSIGN_OR_RETURN(strip_first, tj::BoolOr(json, "add_prefix_space", path, true));
    }
    return std::make_unique<MetaspaceDecoder>(std::move(replacement), strip_first);
  }
  if (type == "Replace") {
    KAON_ASSIGN_OR_RETURN(ReplacePattern pattern, ReplacePattern::FromJson(json, path));
    return std::make_unique<ReplaceDecoder>(std::move(pattern));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    KAON_ASSIGN_OR_RETURN(std::string content, tj::String(json, "content", path));
    size_t n = 0;
    if (content.empty() || (utf8::Next(content, n), n != content.size())) {
      return tj::Invalid(tj::Sub(path, "content"), "expected a single character");
    }
    n = 0;
    const char32_t c = utf8::Next(content, n);
    KAON_ASSIGN_OR_RETURN(int64_t start, tj::IntOr(json, "start", path, 0));
    KAON_ASSIGN_OR_RETURN(int64_t stop, tj::IntOr(json, "stop", path, 0));
    if (start < 0 || stop < 0) return tj::Invalid(path, "start and stop must be non-negative");
    return std::make_unique<StripDecoder>(c, static_cast<size_t>(start), static_cast<size_t>(stop));
  }
  return tj::Unsupported(tj::Sub(path, "type"), type);
}

}  // namespace kaon
