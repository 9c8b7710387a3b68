// Splits template source into data and tag tokens with jinja2's whitespace rules
// as transformers configures them: trim_blocks, lstrip_blocks, `-`/`+` markers,
// newline normalisation and the dropped final newline (keep_trailing_newline=False).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kaon::jinja {

enum class Tok { kData, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEof };

struct Token {
  Tok type;
  std::string text;  // data, name, operator, or the unescaped string literal
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
  int column = 1;
};

// Thrown for lexical and syntax errors; Parse reports "line L, column C: message".
struct ParseError {
  int line;
  int column;
  std::string message;
};

std::vector<Token> Tokenize(const std::string& source);

}  // namespace kaon::jinja
