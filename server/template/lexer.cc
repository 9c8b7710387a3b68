#include "server/template/lexer.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "server/template/text.h"

namespace kaon::jinja {
namespace {

bool IsSpaceByte(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Python's unicode_escape decoding of a string literal's body.
// Returns false on a malformed \x, \u or \U escape.
bool Unescape(const std::string& s, std::string& out) {
  bool ok = true;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 >= s.size()) {
      out.push_back(s[i]);
      continue;
    }
    char c = s[++i];
    auto hex = [&](int n) -> char32_t {
      char32_t v = 0;
      for (int k = 0; k < n; ++k) {
        if (i + 1 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1]))) {
          ok = false;
          return v;
        }
        char h = s[++i];
        v = v * 16 + (std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      return v;
    };
    switch (c) {
      case '\n': break;
      case '\\': out.push_back('\\'); break;
      case '\'': out.push_back('\''); break;
      case '"': out.push_back('"'); break;
      case 'a': out.push_back('\a'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'v': out.push_back('\v'); break;
      case 'x': AppendUtf8(hex(2), out); break;
      case 'u': AppendUtf8(hex(4), out); break;
      case 'U': AppendUtf8(hex(8), out); break;
      default:
        if (c >= '0' && c <= '7') {
          char32_t v = c - '0';
          for (int k = 0; k < 2 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7'; ++k)
            v = v * 8 + (s[++i] - '0');
          AppendUtf8(v, out);
        } else {
          out.push_back('\\');  // unknown escapes stay as written
          out.push_back(c);
        }
    }
  }
  return ok;
}

class Lexer {
 public:
  explicit Lexer(const std::string& raw) {
    // Normalise \r\n and \r to \n, then drop one trailing newline.
    src_.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\r') {
        src_.push_back('\n');
        if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
      } else {
        src_.push_back(raw[i]);
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
  }

  std::vector<Token> Run() {
    while (pos_ < src_.size()) Root();
    Emit(Tok::kEof, "", pos_);
    return std::move(tokens_);
  }

 private:
  void Position(size_t pos, int& line, int& col) const {
    line = 1;
    size_t start = 0;
    for (size_t i = 0; i < pos && i < src_.size(); ++i)
      if (src_[i] == '\n') {
        ++line;
        start = i + 1;
      }
    col = static_cast<int>(CodePointCount(std::string_view(src_).substr(start, pos - start))) + 1;
  }

  // Skips Python regex `\s*` (Unicode whitespace) from p.
  size_t SkipSpace(size_t p) const {
    while (p < src_.size()) {
      unsigned char c = static_cast<unsigned char>(src_[p]);
      if (c < 0x80) {
        if (!IsSpaceByte(src_[p]) && !(c >= 0x1C && c <= 0x1F)) return p;
        ++p;
        continue;
      }
      size_t len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
      std::u32string cp = DecodeUtf8(std::string_view(src_).substr(p, len));
      if (cp.size() != 1 || !IsPySpace(cp[0])) return p;
      p += len;
    }
    return p;
  }

  [[noreturn]] void Fail(size_t pos, const std::string& msg) const {
    int line, col;
    Position(pos, line, col);
    throw ParseError{line, col, msg};
  }

  Token& Emit(Tok t, std::string text, size_t pos) {
    Token tok;
    tok.type = t;
    tok.text = std::move(text);
    // Line numbers are computed incrementally for speed.
    for (; line_pos_ < pos && line_pos_ < src_.size(); ++line_pos_)
      if (src_[line_pos_] == '\n') {
        ++line_;
        line_start_ = line_pos_ + 1;
      }
    tok.line = line_;
    tok.column = static_cast<int>(CodePointCount(std::string_view(src_).substr(line_start_, pos - line_start_))) + 1;
    tokens_.push_back(std::move(tok));
    return tokens_.back();
  }

  // Strips the text before a tag per the sign that follows the tag opener.
  std::string StripBefore(std::string text, char sign, bool lstrip_applies) const {
    if (sign == '-') return PyStrip(text, std::nullopt, false, true);
    if (sign != '+' && lstrip_applies) {
      size_t nl = text.rfind('\n');
      size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if (l_pos > 0 || line_starting_) {
        bool all_space = l_pos < text.size();
        for (char32_t c : DecodeUtf8(std::string_view(text).substr(l_pos)))
          if (!IsPySpace(c)) all_space = false;
        if (all_space) text.resize(l_pos);
      }
    }
    return text;
  }

  // Matches `{%[-+]?\s*raw\s*(-%}\s*|%})` at pos; returns end or npos.
  size_t MatchRawBegin(size_t p, char& sign) const {
    p += 2;
    sign = 0;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
    p = SkipSpace(p);
    if (src_.compare(p, 3, "raw") != 0) return std::string::npos;
    p += 3;
    if (p < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[p])) || src_[p] == '_'))
      return std::string::npos;
    p = SkipSpace(p);
    if (src_.compare(p, 3, "-%}") == 0) return SkipSpace(p + 3);
    if (src_.compare(p, 2, "%}") == 0) return p + 2;
    return std::string::npos;
  }

  void Root() {
    size_t tag = src_.find('{', pos_);
    while (tag != std::string::npos && tag + 1 < src_.size() && src_[tag + 1] != '{' && src_[tag + 1] != '%' &&
           src_[tag + 1] != '#')
      tag = src_.find('{', tag + 1);
    if (tag == std::string::npos || tag + 1 >= src_.size()) {
      Emit(Tok::kData, src_.substr(pos_), pos_);
      pos_ = src_.size();
      return;
    }
    char kind = src_[tag + 1];
    char sign = 0;
    std::string text = src_.substr(pos_, tag - pos_);
    size_t text_pos = pos_;
    if (kind == '%') {
      size_t raw_end = MatchRawBegin(tag, sign);
      if (raw_end != std::string::npos) {
        text = StripBefore(std::move(text), sign, true);
        if (!text.empty()) Emit(Tok::kData, std::move(text), text_pos);
        line_starting_ = src_[raw_end - 1] == '\n';
        Raw(raw_end, tag);
        return;
      }
    }
    size_t p = tag + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
    text = StripBefore(std::move(text), sign, kind != '{');
    if (!text.empty()) Emit(Tok::kData, std::move(text), text_pos);
    line_starting_ = false;
    if (kind == '#') {
      Comment(p, tag);
    } else {
      Emit(kind == '{' ? Tok::kVarBegin : Tok::kBlockBegin, "", tag);
      Tag(p, kind);
    }
  }

  void Raw(size_t p, size_t begin) {
    // Finds `{%[-+]?\s*endraw\s*(+%}|-%}\s*|%}\n?)`.
    for (size_t at = src_.find("{%", p); at != std::string::npos; at = src_.find("{%", at + 2)) {
      size_t q = at + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      q = SkipSpace(q);
      if (src_.compare(q, 6, "endraw") != 0) continue;
      q = SkipSpace(q + 6);
      size_t end;
      if (src_.compare(q, 3, "+%}") == 0) {
        end = q + 3;
      } else if (src_.compare(q, 3, "-%}") == 0) {
        end = SkipSpace(q + 3);
      } else if (src_.compare(q, 2, "%}") == 0) {
        end = q + 2;
        if (end < src_.size() && src_[end] == '\n') ++end;
      } else {
        continue;
      }
      std::string text = StripBefore(src_.substr(p, at - p), sign, true);
      if (!text.empty()) Emit(Tok::kData, std::move(text), p);
      line_starting_ = src_[end - 1] == '\n';
      pos_ = end;
      return;
    }
    Fail(begin, "Missing end of raw directive");
  }

  void Comment(size_t p, size_t begin) {
    for (size_t at = src_.find("#}", p); at != std::string::npos; at = src_.find("#}", at + 1)) {
      size_t end = at + 2;
      char before = at > p ? src_[at - 1] : 0;
      if (before == '-') {
        end = SkipSpace(end);
      } else if (before != '+') {
        if (end < src_.size() && src_[end] == '\n') ++end;
      }
      line_starting_ = src_[end - 1] == '\n';
      pos_ = end;
      return;
    }
    Fail(begin, "Missing end of comment tag");
  }

  void Tag(size_t p, char kind) {
    const char close = kind == '{' ? '}' : '%';
    std::vector<char> brackets;
    while (true) {
      size_t ws_end = SkipSpace(p);
      if (ws_end > p) line_starting_ = src_[ws_end - 1] == '\n';
      p = ws_end;
      if (p >= src_.size())
        Fail(p, kind == '{' ? "unexpected end of template, expected 'end of print statement'."
                            : "unexpected end of template, expected 'end of statement block'.");
      if (brackets.empty()) {
        // End markers: `-}}`/`-%}` strip all following whitespace; `%}` eats one newline.
        size_t end = std::string::npos;
        if (src_[p] == '-' && p + 2 < src_.size() && src_[p + 1] == close &&
            src_[p + 2] == '}') {
          end = p + 3;
          Emit(kind == '{' ? Tok::kVarEnd : Tok::kBlockEnd, "", p);
          end = SkipSpace(end);
        } else if (kind == '%' && src_[p] == '+' && src_.compare(p + 1, 2, "%}") == 0) {
          end = p + 3;
          Emit(Tok::kBlockEnd, "", p);
        } else if (src_[p] == close && p + 1 < src_.size() && src_[p + 1] == '}') {
          end = p + 2;
          Emit(kind == '{' ? Tok::kVarEnd : Tok::kBlockEnd, "", p);
          if (kind == '%' && end < src_.size() && src_[end] == '\n') ++end;
        }
        if (end != std::string::npos) {
          line_starting_ = src_[end - 1] == '\n';
          pos_ = end;
          return;
        }
      }
      p = Operand(p, brackets);
      line_starting_ = false;
    }
  }

  size_t Operand(size_t p, std::vector<char>& brackets) {
    char c = src_[p];
    if (std::isdigit(static_cast<unsigned char>(c))) return Number(p);
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t q = p;
      while (q < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[q])) || src_[q] == '_')) ++q;
      Emit(Tok::kName, src_.substr(p, q - p), p);
      return q;
    }
    if (c == '\'' || c == '"') {
      size_t q = p + 1;
      while (q < src_.size() && src_[q] != c) q += src_[q] == '\\' ? 2 : 1;
      if (q >= src_.size()) Fail(p, "unexpected char '" + std::string(1, c) + "'");
      std::string value;
      if (!Unescape(src_.substr(p + 1, q - p - 1), value)) Fail(p, "invalid escape sequence in string literal");
      Emit(Tok::kString, std::move(value), p);
      return q + 1;
    }
    static const char* kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]",
                                 "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"};
    for (const char* op : kOps) {
      size_t n = std::char_traits<char>::length(op);
      if (src_.compare(p, n, op) != 0) continue;
      if (n == 1 && (c == '(' || c == '[' || c == '{')) {
        brackets.push_back(c);
      } else if (n == 1 && (c == ')' || c == ']' || c == '}')) {
        char want = c == ')' ? '(' : c == ']' ? '[' : '{';
        if (brackets.empty()) Fail(p, std::string("unexpected '") + c + "'");
        if (brackets.back() != want)
          Fail(p, std::string("unexpected '") + c + "', expected '" +
                      (brackets.back() == '(' ? ")" : brackets.back() == '[' ? "]" : "}") + "'");
        brackets.pop_back();
      }
      Emit(Tok::kOp, op, p);
      return p + n;
    }
    Fail(p, "unexpected char " + PyReprString(std::string(1, c)) + " at " + std::to_string(p));
  }

  size_t Number(size_t p) {
    size_t q = p;
    auto digits = [&]() {
      while (q < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[q])) ||
                                 (src_[q] == '_' && q + 1 < src_.size() && std::isdigit(static_cast<unsigned char>(src_[q + 1])))))
        ++q;
    };
    bool after_dot = p > 0 && src_[p - 1] == '.';
    if (src_[p] == '0' && q + 1 < src_.size() && std::strchr("xXoObB", src_[q + 1])) {
      int base = std::strchr("xX", src_[q + 1]) ? 16 : std::strchr("oO", src_[q + 1]) ? 8 : 2;
      q += 2;
      std::string d;
      while (q < src_.size() && (std::isxdigit(static_cast<unsigned char>(src_[q])) || src_[q] == '_'))
        if (src_[q++] != '_') d.push_back(src_[q - 1]);
      Token& t = Emit(Tok::kInt, "", p);
      t.int_value = std::strtoll(d.c_str(), nullptr, base);
      return q;
    }
    digits();
    bool is_float = false;
    if (!after_dot) {
      size_t save = q;
      if (q + 1 < src_.size() && src_[q] == '.' && std::isdigit(static_cast<unsigned char>(src_[q + 1]))) {
        ++q;
        digits();
        is_float = true;
      }
      if (q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
        size_t e = q + 1;
        if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
        if (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) {
          q = e;
          digits();
          is_float = true;
        }
      }
      if (!is_float) q = save;
    }
    std::string text;
    for (size_t i = p; i < q; ++i)
      if (src_[i] != '_') text.push_back(src_[i]);
    Token& t = Emit(is_float ? Tok::kFloat : Tok::kInt, text, p);
    if (is_float) {
      t.float_value = std::strtod(text.c_str(), nullptr);
    } else {
      errno = 0;
      t.int_value = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) Fail(p, "integer literal too large");
    }
    return q;
  }

  std::string src_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
  int line_ = 1;
  size_t line_pos_ = 0;
  size_t line_start_ = 0;
};

}  // namespace

std::vector<Token> Tokenize(const std::string& source) { return Lexer(source).Run(); }

}  // namespace kaon::jinja
