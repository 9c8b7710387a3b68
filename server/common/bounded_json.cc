#include "server/common/bounded_json.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

#include "server/common/utf8.h"

namespace kaon {
namespace {

using Json = nlohmann::ordered_json;
// An object's members as they are read. ordered_map's pairs have a const
// key, so a growing ordered_map copies every member (deeply) when it
// reallocates; these move, and the ordered_map is built once at '}'.
using Members = std::vector<std::pair<std::string, Json>>;

// Objects up to this many keys find a repeated key by a linear scan, cheaper
// than hashing for the small objects requests are made of; larger ones
// build an index, so duplicate detection stays linear.
constexpr size_t kIndexFrom = 16;

// Open addressing over member positions, for objects past kIndexFrom keys.
// Each slot holds the key's hash (high 32 bits) and its position + 1 (low
// 32 bits); 0 is empty.
class KeyIndex {
 public:
  // The position of `key` in `members`, or nullopt (then `key` is inserted as
  // position `next`).
  std::optional<size_t> FindOrInsert(const Members& members, std::string_view key, size_t next) {
    if (slots_.empty()) Rebuild(members, next);
    const uint64_t h = std::hash<std::string_view>()(key);
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint64_t s = slots_[i];
      if (s == 0) break;
      const size_t pos = static_cast<size_t>(s & 0xffffffffu) - 1;
      if (static_cast<uint32_t>(s >> 32) == tag && members[pos].first == key) return pos;
    }
    if (++count_ * 2 > slots_.size()) {
      Rebuild(members, next);  // covers members[0, next); `key` goes in below
      ++count_;
    }
    Insert(h, next);
    return std::nullopt;
  }

 private:
  void Insert(uint64_t h, size_t pos) {
    size_t i = h & mask_;
    while (slots_[i] != 0) i = (i + 1) & mask_;
    slots_[i] = (h >> 32 << 32) | static_cast<uint64_t>(pos + 1);
  }
  // Indexes members[0, n) in a table at most half full after one more.
  void Rebuild(const Members& members, size_t n) {
    size_t size = 64;
    while (size < 4 * (n + 1)) size *= 2;
    slots_.assign(size, 0);
    mask_ = size - 1;
    for (size_t i = 0; i < n; ++i) Insert(std::hash<std::string_view>()(members[i].first), i);
    count_ = n;
  }

  std::vector<uint64_t> slots_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

// Eight bytes at a time: does any byte need a closer look in a string (a
// quote, a backslash, a control character or a non-ASCII byte)?
inline bool NeedsAttention(uint64_t v) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  auto has_zero = [](uint64_t x) { return (x - kOnes) & ~x & kHigh; };
  const uint64_t quote = has_zero(v ^ (kOnes * '"'));
  const uint64_t backslash = has_zero(v ^ (kOnes * '\\'));
  const uint64_t control = (v - kOnes * 0x20) & ~v & kHigh;  // bytes < 0x20 (among ASCII bytes)
  return (quote | backslash | control | (v & kHigh)) != 0;
}

inline bool PlainByte(unsigned char c) { return c != '"' && c != '\\' && c >= 0x20 && c < 0x80; }

class Parser {
 public:
  Parser(std::string_view text, const JsonLimits& limits)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()), limits_(limits) {}

  bool ParseDocument(Json& out) {
    SkipWhitespace();
    if (!ParseValue(out, 0)) return false;
    SkipWhitespace();
    if (p_ != end_) return Fail(JsonParseFailure::kSyntax, "unexpected text after the JSON value");
    return true;
  }

  std::optional<JsonParseError>& error() { return error_; }

 private:
  bool Fail(JsonParseFailure kind, std::string_view what) {
    if (!error_) {
      std::string message(what);
      message += " (at byte " + std::to_string(p_ - begin_) + ")";
      error_ = JsonParseError{kind, std::move(message)};
    }
    return false;
  }

  void SkipWhitespace() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool ParseValue(Json& out, int depth) {
    if (limits_.max_elements != 0 && ++elements_ > limits_.max_elements) {
      return Fail(JsonParseFailure::kElements,
                  "JSON holds more than " + std::to_string(limits_.max_elements) + " values");
    }
    if (p_ == end_) return Fail(JsonParseFailure::kSyntax, "unexpected end of input, expected a value");
    switch (*p_) {
      case '{': return ParseObject(out, depth + 1);
      case '[': return ParseArray(out, depth + 1);
      case '"': {
        std::string s;
        if (!ParseString(s)) return false;
        out = Json(std::move(s));
        return true;
      }
      case 't': return ParseLiteral("true", Json(true), out);
      case 'f': return ParseLiteral("false", Json(false), out);
      case 'n': return ParseLiteral("null", Json(nullptr), out);
      default:
        if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')) return ParseNumber(out);
        return Fail(JsonParseFailure::kSyntax, "unexpected character, expected a value");
    }
  }

  bool EnterContainer(int depth) {
    if (depth > limits_.max_depth) {
      return Fail(JsonParseFailure::kDepth, "JSON nests deeper than " + std::to_string(limits_.max_depth) + " levels");
    }
    ++p_;  // the bracket
    SkipWhitespace();
    return true;
  }

  bool ParseArray(Json& out, int depth) {
    if (!EnterContainer(depth)) return false;
    Json::array_t items;
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      out = Json::array();
      return true;
    }
    for (;;) {
      items.emplace_back();
      if (!ParseValue(items.back(), depth)) return false;
      SkipWhitespace();
      if (p_ == end_) return Fail(JsonParseFailure::kSyntax, "unexpected end of input in an array");
      if (*p_ == ',') {
        ++p_;
        SkipWhitespace();
        continue;
      }
      if (*p_ == ']') {
        ++p_;
        break;
      }
      return Fail(JsonParseFailure::kSyntax, "expected ',' or ']' in an array");
    }
    out = Json(std::move(items));
    return true;
  }

  bool ParseObject(Json& out, int depth) {
    if (!EnterContainer(depth)) return false;
    Members members;
    KeyIndex index;
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      out = Json::object();
      return true;
    }
    for (;;) {
      if (p_ == end_ || *p_ != '"') return Fail(JsonParseFailure::kSyntax, "expected a string key in an object");
      std::string key;
      if (!ParseString(key)) return false;
      SkipWhitespace();
      if (p_ == end_ || *p_ != ':') return Fail(JsonParseFailure::kSyntax, "expected ':' after an object key");
      ++p_;
      SkipWhitespace();
      std::optional<size_t> found;
      if (members.size() < kIndexFrom) {
        for (size_t i = 0; i < members.size(); ++i) {
          if (members[i].first == key) {
            found = i;
            break;
          }
        }
      } else {
        found = index.FindOrInsert(members, key, members.size());
      }
      Json* slot = nullptr;
      if (found) {
        // Python's dict: the last value wins, the first position stays.
        slot = &members[*found].second;
      } else {
        if (limits_.max_object_keys != 0 && members.size() >= limits_.max_object_keys) {
          return Fail(JsonParseFailure::kKeys,
                      "a JSON object holds more than " + std::to_string(limits_.max_object_keys) + " keys");
        }
        members.emplace_back(std::move(key), Json());
        slot = &members.back().second;
      }
      // `members` is not touched while its slot is being filled.
      if (!ParseValue(*slot, depth)) return false;
      SkipWhitespace();
      if (p_ == end_) return Fail(JsonParseFailure::kSyntax, "unexpected end of input in an object");
      if (*p_ == ',') {
        ++p_;
        SkipWhitespace();
        continue;
      }
      if (*p_ == '}') {
        ++p_;
        break;
      }
      return Fail(JsonParseFailure::kSyntax, "expected ',' or '}' in an object");
    }
    Json::object_t object;
    object.reserve(members.size());
    // ordered_map derives from std::vector: emplace_back appends without its
    // duplicate search (the keys are unique already).
    for (auto& [k, v] : members) object.emplace_back(std::move(k), std::move(v));
    out = Json(std::move(object));
    return true;
  }

  bool ParseLiteral(std::string_view word, Json value, Json& out) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::memcmp(p_, word.data(), word.size()) != 0) {
      return Fail(JsonParseFailure::kSyntax, "invalid literal, expected a value");
    }
    p_ += word.size();
    out = std::move(value);
    return true;
  }

  bool ParseNumber(Json& out) {
    const char* start = p_;
    auto digits = [&] {
      const char* d = p_;
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      return p_ != d;
    };
    const bool negative = *p_ == '-';
    if (negative) ++p_;
    if (p_ == end_) return Fail(JsonParseFailure::kSyntax, "invalid number");
    if (*p_ == '0') {
      ++p_;  // no leading zeros
    } else if (!digits()) {
      return Fail(JsonParseFailure::kSyntax, "invalid number");
    }
    bool integral = true;
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (!digits()) return Fail(JsonParseFailure::kSyntax, "invalid number: expected digits after '.'");
      integral = false;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return Fail(JsonParseFailure::kSyntax, "invalid number: expected digits in the exponent");
      integral = false;
    }
    // nlohmann's types: non-negative integers are unsigned, negative ones
    // signed, and integers too large for either become doubles.
    if (integral) {
      if (negative) {
        int64_t v = 0;
        auto r = std::from_chars(start, p_, v);
        if (r.ec == std::errc() && r.ptr == p_) {
          out = Json(static_cast<Json::number_integer_t>(v));
          return true;
        }
      } else {
        uint64_t v = 0;
        auto r = std::from_chars(start, p_, v);
        if (r.ec == std::errc() && r.ptr == p_) {
          out = Json(static_cast<Json::number_unsigned_t>(v));
          return true;
        }
      }
    }
    double d = 0;
    auto r = std::from_chars(start, p_, d);
    if (r.ec == std::errc::result_out_of_range) {
      // Underflow becomes 0 or a subnormal, as strtod gives it; overflow is
      // refused, as nlohmann refuses it (no JSON value is infinite).
      d = std::strtod(std::string(start, p_).c_str(), nullptr);
      if (!std::isfinite(d)) return Fail(JsonParseFailure::kSyntax, "number out of range");
    } else if (r.ec != std::errc() || r.ptr != p_) {
      return Fail(JsonParseFailure::kSyntax, "invalid number");
    }
    out = Json(static_cast<Json::number_float_t>(d));
    return true;
  }

  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // Four hex digits after "\u"; -1 if malformed.
  int32_t ReadHex4() {
    if (end_ - p_ < 4) return -1;
    int32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = Hex(p_[i]);
      if (h < 0) return -1;
      v = v * 16 + h;
    }
    p_ += 4;
    return v;
  }

  bool ParseEscape(std::string& out) {
    ++p_;  // the backslash
    if (p_ == end_) return Fail(JsonParseFailure::kSyntax, "unterminated string");
    const char c = *p_++;
    switch (c) {
      case '"': out.push_back('"'); return true;
      case '\\': out.push_back('\\'); return true;
      case '/': out.push_back('/'); return true;
      case 'b': out.push_back('\b'); return true;
      case 'f': out.push_back('\f'); return true;
      case 'n': out.push_back('\n'); return true;
      case 'r': out.push_back('\r'); return true;
      case 't': out.push_back('\t'); return true;
      case 'u': break;
      default: --p_; return Fail(JsonParseFailure::kSyntax, "invalid escape in a string");
    }
    int32_t cp = ReadHex4();
    if (cp < 0) return Fail(JsonParseFailure::kSyntax, "invalid \\u escape: expected four hex digits");
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return Fail(JsonParseFailure::kSyntax, "invalid \\u escape: a low surrogate without a high one");
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') {
        return Fail(JsonParseFailure::kSyntax, "invalid \\u escape: a high surrogate must be followed by a low one");
      }
      p_ += 2;
      const int32_t low = ReadHex4();
      if (low < 0xDC00 || low > 0xDFFF) {
        return Fail(JsonParseFailure::kSyntax, "invalid \\u escape: a high surrogate must be followed by a low one");
      }
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    utf8::Append(out, static_cast<char32_t>(cp));
    return true;
  }

  // One well-formed UTF-8 sequence (RFC 3629: no overlong forms, no
  // surrogates, nothing past U+10FFFF), copied to `out`.
  bool ParseUtf8(std::string& out) {
    const auto* u = reinterpret_cast<const unsigned char*>(p_);
    const size_t left = static_cast<size_t>(end_ - p_);
    const unsigned char c = u[0];
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return Fail(JsonParseFailure::kSyntax, "invalid UTF-8 in a string");
    }
    if (left < n || u[1] < lo || u[1] > hi) return Fail(JsonParseFailure::kSyntax, "invalid UTF-8 in a string");
    for (size_t i = 2; i < n; ++i) {
      if (u[i] < 0x80 || u[i] > 0xBF) return Fail(JsonParseFailure::kSyntax, "invalid UTF-8 in a string");
    }
    out.append(p_, n);
    p_ += n;
    return true;
  }

  bool ParseString(std::string& out) {
    ++p_;  // the opening quote
    for (;;) {
      const char* run = p_;
      while (end_ - p_ >= 8) {
        uint64_t v;
        std::memcpy(&v, p_, 8);
        if (NeedsAttention(v)) break;
        p_ += 8;
      }
      while (p_ != end_ && PlainByte(static_cast<unsigned char>(*p_))) ++p_;
      out.append(run, p_);
      if (p_ == end_) return Fail(JsonParseFailure::kSyntax, "unterminated string");
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c == '\\') {
        if (!ParseEscape(out)) return false;
      } else if (c < 0x20) {
        return Fail(JsonParseFailure::kSyntax, "control character in a string (it must be escaped)");
      } else if (!ParseUtf8(out)) {
        return false;
      }
    }
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  const JsonLimits& limits_;
  size_t elements_ = 0;
  std::optional<JsonParseError> error_;
};

}  // namespace

BoundedJsonResult ParseJsonBounded(std::string_view text, const JsonLimits& limits) {
  BoundedJsonResult out;
  Parser parser(text, limits);
  if (!parser.ParseDocument(out.value)) {
    out.error = std::move(parser.error());
    out.value = nullptr;
  }
  return out;
}

}  // namespace kaon
