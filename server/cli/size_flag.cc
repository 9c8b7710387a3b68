#include "server/cli/size_flag.h"

#include <limits>
#include <numeric>

namespace kaon {
namespace {

constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
// 10^18 is the largest power of ten in 64 bits: more fraction digits than
// that (after dropping trailing zeros) are refused rather than approximated.
constexpr size_t kMaxFractionDigits = 18;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The multiplier of a suffix letter; nullopt for anything else.
std::optional<uint64_t> Multiplier(char suffix) {
  switch (suffix) {
    case 'k': return uint64_t{1000};
    case 'm': return uint64_t{1000} * 1000;
    case 'g': return uint64_t{1000} * 1000 * 1000;
    case 't': return uint64_t{1000} * 1000 * 1000 * 1000;
    case 'K': return uint64_t{1} << 10;
    case 'M': return uint64_t{1} << 20;
    case 'G': return uint64_t{1} << 30;
    case 'T': return uint64_t{1} << 40;
    default: return std::nullopt;
  }
}

// a * b + c within kMax, or nullopt.
std::optional<uint64_t> MulAdd(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r) || __builtin_add_overflow(r, c, &r) || r > kMax) return std::nullopt;
  return r;
}

SizeParse TooLarge() { return {std::nullopt, "is too large", true}; }

SizeParse Malformed() { return {std::nullopt, "is not a size (use 4096, 4k = 4000, 4K = 4096)", false}; }

}  // namespace

SizeParse ParseSize(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);

  size_t i = 0;
  const size_t int_begin = i;
  while (i < text.size() && IsDigit(text[i])) ++i;
  const std::string_view int_digits = text.substr(int_begin, i - int_begin);
  std::string_view frac_digits;
  if (i < text.size() && text[i] == '.') {
    const size_t frac_begin = ++i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    frac_digits = text.substr(frac_begin, i - frac_begin);
    if (frac_digits.empty()) return Malformed();  // "1." or "1.k"
  }
  if (int_digits.empty()) return Malformed();  // "k", ".5k", "-1k"

  uint64_t multiplier = 1;
  if (i < text.size()) {
    const std::optional<uint64_t> m = Multiplier(text[i]);
    if (!m || i + 1 != text.size()) return Malformed();
    multiplier = *m;
  } else if (!frac_digits.empty()) {
    return {std::nullopt, "is not a whole number", false};  // "1.5": integers only without a suffix
  }

  uint64_t whole = 0;
  for (char c : int_digits) {
    const std::optional<uint64_t> next = MulAdd(whole, 10, static_cast<uint64_t>(c - '0'));
    if (!next) return TooLarge();
    whole = *next;
  }
  const std::optional<uint64_t> scaled = MulAdd(whole, multiplier, 0);
  if (!scaled) return TooLarge();

  // The fraction F / 10^d contributes F * multiplier / 10^d, which must be
  // whole. Reducing by gcd(multiplier, 10^d) keeps the arithmetic in 64 bits.
  while (!frac_digits.empty() && frac_digits.back() == '0') frac_digits.remove_suffix(1);
  if (frac_digits.size() > kMaxFractionDigits) return {std::nullopt, "has too many decimal places", false};
  uint64_t fraction = 0, power = 1;
  for (char c : frac_digits) {
    fraction = fraction * 10 + static_cast<uint64_t>(c - '0');
    power *= 10;
  }
  const uint64_t g = std::gcd(multiplier, power);
  const uint64_t denominator = power / g;
  if (fraction % denominator != 0) return {std::nullopt, "is not a whole number", false};
  // fraction / denominator < g and multiplier / g * g = multiplier, so the
  // product is below the multiplier; only the sum can overflow.
  const std::optional<uint64_t> total = MulAdd(fraction / denominator, multiplier / g, *scaled);
  if (!total) return TooLarge();
  return {static_cast<int64_t>(*total), "", false};
}

}  // namespace kaon
