#include "server/template/text.h"

#include <string.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "server/common/utf8.h"
#include "server/template/budget.h"

namespace kaon::jinja {

std::u32string DecodeUtf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (i + len > s.size()) len = 1;
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += len;
  }
  return out;
}

void AppendUtf8(char32_t c, std::string& out) { utf8::Append(out, c); }

std::string EncodeUtf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) AppendUtf8(c, out);
  return out;
}

bool IsAscii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

size_t CodePointCount(std::string_view s) {
  size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

bool IsPySpace(char32_t c) {
  return (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

bool IsPyPrintable(char32_t c) {
  if (c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0xA0) || c == 0xAD) return false;
  if (c != ' ' && IsPySpace(c)) return false;
  if ((c >= 0x200B && c <= 0x200F) || (c >= 0x202A && c <= 0x202E) || (c >= 0x2060 && c <= 0x2064) ||
      c == 0xFEFF || (c >= 0xD800 && c <= 0xDFFF))
    return false;
  return true;
}

// Case mapping covers ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic; other
// scripts are left unchanged (a documented gap: chat templates rarely case-map content).
char32_t ToUpper(char32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c < 0x80) return c;
  if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
  if (c == 0xFF) return 0x178;
  if (c == 0xB5) return 0x39C;
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x178 &&
      c != 0x17F) {
    bool odd_lower = (c < 0x138) || (c > 0x148 && c < 0x178);
    if (odd_lower ? (c & 1) : !(c & 1)) return c - 1;
    return c;
  }
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
  if (c == 0x3C2) return 0x3A3;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}

char32_t ToLower(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c < 0x80) return c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c == 0x178) return 0xFF;
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x178 &&
      c != 0x17F) {
    bool odd_lower = (c < 0x138) || (c > 0x148 && c < 0x178);
    if (odd_lower ? !(c & 1) : (c & 1)) return c + 1;
    return c;
  }
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

bool IsAlpha(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return ToUpper(c) != c || ToLower(c) != c || c == 0xDF || (c >= 0x4E00 && c <= 0x9FFF) ||
         (c >= 0x3040 && c <= 0x30FF) || (c >= 0xAC00 && c <= 0xD7A3);
}
bool IsDigit(char32_t c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char32_t c) { return IsAlpha(c) || IsDigit(c); }

namespace {
bool IsCased(char32_t c) { return ToUpper(c) != c || ToLower(c) != c || c == 0xDF; }

void AppendUpper(char32_t c, std::string& out) {
  if (c == 0xDF) {
    out += "SS";  // Python: 'ß'.upper() == 'SS'
    return;
  }
  AppendUtf8(ToUpper(c), out);
}
}  // namespace

std::string PyUpper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  if (IsAscii(s)) {
    for (char c : s) out.push_back(c >= 'a' && c <= 'z' ? c - 32 : c);
    return out;
  }
  for (char32_t c : DecodeUtf8(s)) AppendUpper(c, out);
  return out;
}

std::string PyLower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  if (IsAscii(s)) {
    for (char c : s) out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return out;
  }
  for (char32_t c : DecodeUtf8(s)) AppendUtf8(ToLower(c), out);
  return out;
}

std::string PyCapitalize(std::string_view s) {
  std::u32string u = DecodeUtf8(s);
  std::string out;
  for (size_t i = 0; i < u.size(); ++i) {
    if (i == 0)
      AppendUpper(u[i], out);
    else
      AppendUtf8(ToLower(u[i]), out);
  }
  return out;
}

std::string PyTitle(std::string_view s) {
  std::string out;
  bool prev_cased = false;
  for (char32_t c : DecodeUtf8(s)) {
    if (prev_cased)
      AppendUtf8(ToLower(c), out);
    else
      AppendUpper(c, out);
    prev_cased = IsCased(c);
  }
  return out;
}

std::string PyStrip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  std::u32string set = chars ? DecodeUtf8(*chars) : std::u32string();
  // Sorted, so that a long `chars` costs a binary search per character, not a scan.
  std::sort(set.begin(), set.end());
  auto strip = [&](char32_t c) { return chars ? std::binary_search(set.begin(), set.end(), c) : IsPySpace(c); };
  if (utf8::IsValid(s)) {
    // Valid UTF-8 (all client JSON, nearly every template string) decodes and
    // re-encodes to the same bytes: only the stripped ends need decoding, and
    // the result is a byte range of `s`.
    size_t b = 0, e = s.size();
    if (left) {
      while (b < e) {
        size_t next = b;
        if (!strip(utf8::Next(s, next))) break;
        b = next;
      }
    }
    if (right) {
      while (e > b) {
        size_t start = e - 1;
        while (start > b && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
        size_t next = start;
        if (!strip(utf8::Next(s, next))) break;
        e = start;
      }
    }
    return std::string(s.substr(b, e - b));
  }
  std::u32string u = DecodeUtf8(s);
  size_t b = 0, e = u.size();
  if (left)
    while (b < e && strip(u[b])) ++b;
  if (right)
    while (e > b && strip(u[e - 1])) --e;
  return EncodeUtf8(std::u32string_view(u).substr(b, e - b));
}

size_t FindSubstring(std::string_view hay, std::string_view needle, size_t pos) {
  if (pos > hay.size()) return std::string_view::npos;
  if (needle.empty()) return pos;
  // A short needle costs std::find at most its length per byte, and memmem's
  // setup would dominate the short searches templates mostly make.
  if (needle.size() <= 32) return hay.find(needle, pos);
  const void* f = memmem(hay.data() + pos, hay.size() - pos, needle.data(), needle.size());
  return f ? static_cast<size_t>(static_cast<const char*>(f) - hay.data()) : std::string_view::npos;
}

size_t RFindSubstring(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return std::string_view::npos;
  if (needle.empty()) return hay.size();
  // The last occurrence is the first one in the reversed text.
  const std::string rhay(hay.rbegin(), hay.rend()), rneedle(needle.rbegin(), needle.rend());
  const size_t f = FindSubstring(rhay, rneedle);
  return f == std::string_view::npos ? f : hay.size() - f - needle.size();
}

std::vector<std::string> PySplit(std::string_view s, const std::optional<std::string>& sep, long maxsplit,
                                 Budget& budget) {
  budget.ChargeBytes(s.size());
  std::vector<std::string> out;
  auto add = [&](std::string part) {
    budget.CheckItems(out.size() + 1);
    budget.Charge(1);
    out.push_back(std::move(part));
  };
  if (sep) {
    size_t pos = 0;
    while (maxsplit < 0 || static_cast<long>(out.size()) < maxsplit) {
      size_t f = FindSubstring(s, *sep, pos);
      if (f == std::string_view::npos) break;
      add(std::string(s.substr(pos, f - pos)));
      pos = f + sep->size();
    }
    add(std::string(s.substr(pos)));
    return out;
  }
  std::u32string u = DecodeUtf8(s);
  size_t i = 0;
  while (true) {
    while (i < u.size() && IsPySpace(u[i])) ++i;
    if (i >= u.size()) break;
    if (maxsplit >= 0 && static_cast<long>(out.size()) >= maxsplit) {
      size_t e = u.size();
      while (e > i && IsPySpace(u[e - 1])) --e;
      add(EncodeUtf8(std::u32string_view(u).substr(i, e - i)));
      break;
    }
    size_t j = i;
    while (j < u.size() && !IsPySpace(u[j])) ++j;
    add(EncodeUtf8(std::u32string_view(u).substr(i, j - i)));
    i = j;
  }
  return out;
}

std::vector<std::string> PyRSplit(std::string_view s, const std::optional<std::string>& sep, long maxsplit,
                                  Budget& budget) {
  if (maxsplit < 0) return PySplit(s, sep, maxsplit, budget);
  std::vector<std::string> out;
  if (sep) {
    // Splitting the reversed text from the left finds the separators that a scan
    // from the right finds, in linear time.
    budget.ChargeBytes(s.size());
    const std::string rs(s.rbegin(), s.rend()), rsep(sep->rbegin(), sep->rend());
    for (const std::string& part : PySplit(rs, rsep, maxsplit, budget)) out.emplace_back(part.rbegin(), part.rend());
  } else {
    budget.ChargeBytes(s.size());
    std::u32string u = DecodeUtf8(s);
    size_t j = u.size();
    auto add = [&](std::string part) {
      budget.CheckItems(out.size() + 1);
      budget.Charge(1);
      out.push_back(std::move(part));
    };
    while (true) {
      while (j > 0 && IsPySpace(u[j - 1])) --j;
      if (j == 0) break;
      if (static_cast<long>(out.size()) >= maxsplit) {
        size_t b = 0;
        while (b < j && IsPySpace(u[b])) ++b;
        add(EncodeUtf8(std::u32string_view(u).substr(b, j - b)));
        break;
      }
      size_t i = j;
      while (i > 0 && !IsPySpace(u[i - 1])) --i;
      add(EncodeUtf8(std::u32string_view(u).substr(i, j - i)));
      j = i;
    }
  }
  return {out.rbegin(), out.rend()};
}

std::vector<std::string> PySplitlines(std::string_view s, bool keepends, Budget& budget) {
  budget.ChargeBytes(s.size());
  std::u32string u = DecodeUtf8(s);
  std::vector<std::string> out;
  auto add = [&](std::string part) {
    budget.CheckItems(out.size() + 1);
    budget.Charge(1);
    out.push_back(std::move(part));
  };
  size_t start = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    char32_t c = u[i];
    bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 ||
               c == 0x2028 || c == 0x2029;
    if (!brk) continue;
    size_t eol = i;
    if (c == '\r' && i + 1 < u.size() && u[i + 1] == '\n') ++i;
    size_t end = keepends ? i + 1 : eol;
    add(EncodeUtf8(std::u32string_view(u).substr(start, end - start)));
    start = i + 1;
  }
  if (start < u.size()) add(EncodeUtf8(std::u32string_view(u).substr(start)));
  return out;
}

std::string PyReplace(std::string_view s, std::string_view old, std::string_view repl, long count,
                      Budget& budget) {
  budget.ChargeBytes(s.size());
  std::string out;
  auto append = [&](std::string_view piece) {
    budget.ChargeBytes(piece.size());
    budget.CheckString(out.size() + piece.size());
    out.append(piece);
  };
  if (old.empty()) {
    // Python inserts the replacement between code points (and at both ends).
    std::u32string u = DecodeUtf8(s);
    long n = 0;
    for (size_t i = 0; i <= u.size(); ++i) {
      if (count < 0 || n < count) {
        append(repl);
        ++n;
      }
      if (i < u.size()) AppendUtf8(u[i], out);
    }
    budget.CheckString(out.size());
    return out;
  }
  size_t pos = 0;
  long n = 0;
  while (count < 0 || n < count) {
    size_t f = FindSubstring(s, old, pos);
    if (f == std::string_view::npos) break;
    append(s.substr(pos, f - pos));
    append(repl);
    pos = f + old.size();
    ++n;
  }
  append(s.substr(pos));
  return out;
}

long PyCount(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<long>(CodePointCount(s)) + 1;
  long n = 0;
  for (size_t pos = FindSubstring(s, sub); pos != std::string_view::npos; pos = FindSubstring(s, sub, pos + sub.size()))
    ++n;
  return n;
}

long PyFind(std::string_view s, std::string_view sub, bool reverse) {
  size_t f = reverse ? RFindSubstring(s, sub) : FindSubstring(s, sub);
  if (f == std::string_view::npos) return -1;
  return static_cast<long>(CodePointCount(s.substr(0, f)));
}

std::string PyReprString(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : DecodeUtf8(s)) {
    char buf[16];
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (IsPyPrintable(c)) {
      AppendUtf8(c, out);
    } else {
      if (c < 0x100)
        std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(c));
      else if (c < 0x10000)
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      else
        std::snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(c));
      out += buf;
    }
  }
  out.push_back(quote);
  return out;
}

std::string PyFloatRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest round-trip digits in scientific form, then Python's layout:
  // exponent notation when the decimal exponent is < -4 or >= 16.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  int exp = std::stoi(sci.substr(e + 1));
  std::string digits;
  for (char c : mant)
    if (c != '.') digits.push_back(c);
  std::string out;
  if (neg) out.push_back('-');
  if (exp < -4 || exp >= 16) {
    out.push_back(digits[0]);
    if (digits.size() > 1) {
      out.push_back('.');
      out.append(digits, 1, std::string::npos);
    }
    char eb[16];
    std::snprintf(eb, sizeof(eb), "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out.append(eb);
    return out;
  }
  if (exp < 0) {
    out.append("0.");
    out.append(static_cast<size_t>(-exp - 1), '0');
    out.append(digits);
  } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
    out.append(digits);
    out.append(exp + 1 - digits.size(), '0');
    out.append(".0");
  } else {
    out.append(digits, 0, exp + 1);
    out.push_back('.');
    out.append(digits, exp + 1, std::string::npos);
  }
  return out;
}

}  // namespace kaon::jinja
