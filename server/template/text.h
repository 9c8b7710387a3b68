// UTF-8 text helpers with Python str semantics (code points, whitespace, case),
// because templates index, slice and strip strings the way Python does.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kaon::jinja {

class Budget;

std::u32string DecodeUtf8(std::string_view s);
std::string EncodeUtf8(std::u32string_view s);
void AppendUtf8(char32_t c, std::string& out);
bool IsAscii(std::string_view s);
size_t CodePointCount(std::string_view s);

// Python's str.isspace() for one code point.
bool IsPySpace(char32_t c);
bool IsPyPrintable(char32_t c);
char32_t ToUpper(char32_t c);
char32_t ToLower(char32_t c);
bool IsAlpha(char32_t c);
bool IsDigit(char32_t c);
bool IsAlnum(char32_t c) ;

std::string PyUpper(std::string_view s);
std::string PyLower(std::string_view s);
std::string PyCapitalize(std::string_view s);
std::string PyTitle(std::string_view s);  // str.title()
// Byte offset of the first occurrence of `needle` at or after `pos`, or npos.
// Linear time whatever the inputs (glibc's memmem for long needles), which
// std::string_view::find is not: a long needle that almost matches everywhere
// makes it quadratic.
size_t FindSubstring(std::string_view hay, std::string_view needle, size_t pos = 0);
// The last occurrence, also in linear time.
size_t RFindSubstring(std::string_view hay, std::string_view needle);

// chars == nullopt strips whitespace.
std::string PyStrip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// The builders below check what they build against the budget's caps as they go.
std::vector<std::string> PySplit(std::string_view s, const std::optional<std::string>& sep, long maxsplit,
                                 Budget& budget);
std::vector<std::string> PyRSplit(std::string_view s, const std::optional<std::string>& sep, long maxsplit,
                                  Budget& budget);
std::vector<std::string> PySplitlines(std::string_view s, bool keepends, Budget& budget);
std::string PyReplace(std::string_view s, std::string_view old, std::string_view repl, long count, Budget& budget);
// Number of non-overlapping occurrences (Python semantics for empty needles).
long PyCount(std::string_view s, std::string_view sub);
// Code point index of the first occurrence, or -1.
long PyFind(std::string_view s, std::string_view sub, bool reverse);

// repr() of a str: quote choice and escapes as CPython does.
std::string PyReprString(std::string_view s);
// repr() of a float: shortest round-trip digits, Python's exponent rules.
std::string PyFloatRepr(double d);

}  // namespace kaon::jinja
