#include "server/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>

#include "server/common/utf8.h"
#include "server/tokenizer/scratch.h"

namespace kaon {
namespace {

constexpr char kWhiteSpaceItems[] =
    "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";

// Per-thread matching state: the JIT needs a stack larger than the default
// 32 KiB for long whitespace runs, and match data is reused across calls.
// Both keep what a long input made them use (the JIT stack's touched pages,
// the interpreter's frames in the match data), so after an input longer than
// kScratchKeepBytes the state is made afresh (scratch.h).
struct ThreadMatchState {
  ThreadMatchState() { Create(); }
  ~ThreadMatchState() { Destroy(); }
  void Create() {
    jit_stack = pcre2_jit_stack_create(64 * 1024, 16 * 1024 * 1024, nullptr);
    context = pcre2_match_context_create(nullptr);
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
    data = pcre2_match_data_create(64, nullptr);
    largest_input = 0;
  }
  void Destroy() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
  }
  void Refresh() {
    Destroy();
    Create();
  }
  pcre2_jit_stack* jit_stack;
  pcre2_match_context* context;
  pcre2_match_data* data;
  size_t largest_input;  // bytes, since Create
};

ThreadMatchState& MatchState() {
  thread_local ThreadMatchState state;
  return state;
}

std::string EscapeLiteral(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' || c == ' ')) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\x{%X}", u);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::string RewriteWhitespaceClasses(const std::string& pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char n = pattern[i + 1];
      if (n == 's') {
        out += in_class ? std::string(kWhiteSpaceItems) : "[" + std::string(kWhiteSpaceItems) + "]";
      } else if (n == 'S' && !in_class) {
        out += "[^" + std::string(kWhiteSpaceItems) + "]";
      } else {
        // \S inside a class has no equivalent here and stays PCRE2's.
        out += c;
        out += n;
      }
      ++i;
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is literal.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Regex>> Regex::Compile(const std::string& pattern) {
  const std::string rewritten = RewriteWhitespaceClasses(pattern);
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()),
                                   rewritten.size(), PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    return absl::InvalidArgumentError("regex " + pattern + " does not compile: " +
                                      reinterpret_cast<const char*>(message));
  }
  // Without JIT support pcre2_match falls back to the interpreter.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return std::unique_ptr<Regex>(new Regex(code));
}

absl::StatusOr<std::unique_ptr<Regex>> Regex::Literal(std::string_view literal) {
  return Compile(EscapeLiteral(literal));
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::FindAll(std::string_view text,
                    std::vector<std::pair<size_t, size_t>>* matches) const {
  matches->clear();
  ThreadMatchState& st = MatchState();
  auto* code = static_cast<pcre2_code*>(code_);
  size_t pos = 0;
  while (pos <= text.size()) {
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos,
                               PCRE2_NO_UTF_CHECK, st.data, st.context);
    if (rc < 0) break;  // No match; resource errors cannot occur with a 16 MiB stack.
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    const size_t start = ov[0], end = ov[1];
    if (end > start) {
      matches->emplace_back(start, end);
      pos = end;
    } else {
      // An empty match: step one character, as Oniguruma's iterator does.
      if (start >= text.size()) break;
      size_t next = start;
      utf8::Next(text, next);
      pos = next;
    }
  }
  st.largest_input = std::max(st.largest_input, text.size());
  if (st.largest_input > kScratchKeepBytes) st.Refresh();
}

namespace tokenizer_internal {
size_t RegexScratchBytes() { return MatchState().largest_input; }
}  // namespace tokenizer_internal

}  // namespace kaon
