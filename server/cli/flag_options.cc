#include "server/cli/flag_options.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string_view>

#include "server/cli/size_flag.h"

namespace kaon {
namespace {

std::string Quoted(const std::string& text) { return "\"" + text + "\""; }

std::string FormatNumber(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

std::string IntegerRange(int64_t lo, int64_t hi) {
  return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}

std::string NumberRangeText(const NumberRange& r) {
  const bool has_lo = std::isfinite(r.lo), has_hi = std::isfinite(r.hi);
  if (has_lo && has_hi) {
    return std::string(r.lo_open ? "(" : "[") + FormatNumber(r.lo) + ", " + FormatNumber(r.hi) +
           (r.hi_open ? ")" : "]");
  }
  if (has_lo) return std::string(r.lo_open ? "(above " : "(at least ") + FormatNumber(r.lo) + ")";
  if (has_hi) return std::string(r.hi_open ? "(below " : "(at most ") + FormatNumber(r.hi) + ")";
  return "";
}

std::string Trimmed(const std::string& text) {
  const size_t b = text.find_first_not_of(' ');
  if (b == std::string::npos) return "";
  return text.substr(b, text.find_last_not_of(' ') - b + 1);
}

// ParseSize, with a negative size read as an (out-of-range) negative number
// so that "-1" is reported against the range rather than as junk.
std::optional<int64_t> SizeOrNegative(const std::string& text, std::string* error, bool* out_of_int64) {
  SizeParse p = ParseSize(text);
  if (p.value) return p.value;
  if (p.too_large) {
    *out_of_int64 = true;
    return std::nullopt;
  }
  if (!text.empty() && text[0] == '-') {
    const SizeParse magnitude = ParseSize(std::string_view(text).substr(1));
    if (magnitude.value) return -*magnitude.value;
    if (magnitude.too_large) {
      *out_of_int64 = true;
      return std::nullopt;
    }
  }
  *error = Quoted(text) + " " + p.error;
  return std::nullopt;
}

std::optional<int64_t> PlainInteger(const std::string& text, std::string* error, bool* out_of_int64) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec == std::errc::result_out_of_range && ptr == end) {
    *out_of_int64 = true;
    return std::nullopt;
  }
  if (ec != std::errc() || ptr != end || text.empty()) {
    *error = Quoted(text) + " is not an integer";
    return std::nullopt;
  }
  return v;
}

}  // namespace

CLI::Validator IntegerIn(IntegerForm form, int64_t lo, int64_t hi, bool hi_stated) {
  return CLI::Validator(
      [form, lo, hi, hi_stated](std::string& value) -> std::string {
        const std::string text = Trimmed(value);
        std::string error;
        bool out_of_int64 = false;
        const std::optional<int64_t> v = form == IntegerForm::kSize ? SizeOrNegative(text, &error, &out_of_int64)
                                                                    : PlainInteger(text, &error, &out_of_int64);
        if (out_of_int64) return text + " is out of range " + IntegerRange(lo, hi);
        if (!v) return error;
        const std::string shown = text == std::to_string(*v) ? text : text + " (= " + std::to_string(*v) + ")";
        if (*v < lo) {
          return shown + " is out of range " + (hi_stated ? IntegerRange(lo, hi) : "(at least " + std::to_string(lo) + ")");
        }
        if (*v > hi) return shown + " is out of range " + IntegerRange(lo, hi);
        value = std::to_string(*v);
        return "";
      },
      "");
}

CLI::Validator NumberIn(const NumberRange& range) {
  return CLI::Validator(
      [range](std::string& value) -> std::string {
        const std::string text = Trimmed(value);
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v)) {
          return Quoted(text) + " is not a number";
        }
        const bool below = range.lo_open ? v <= range.lo : v < range.lo;
        const bool above = range.hi_open ? v >= range.hi : v > range.hi;
        if (below || above) return text + " is out of range " + NumberRangeText(range);
        return "";
      },
      "");
}

}  // namespace kaon
