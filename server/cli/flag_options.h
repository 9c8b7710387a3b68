// Numeric flags for kaon and kaon-bench, one line each: sizes in ParseSize's
// forms ("4096", "4k", "4K", "1.5M"), plain integers and real numbers, each
// with its own range. A bad value gives a one-line reason that CLI11 prefixes
// with the flag: `--port: 70000 is out of range [0, 65535]`,
// `--max-model-len: "1x" is not a size (use 4096, 4k = 4000, 4K = 4096)`.
// (CLI11's own Range validators print double bounds, 309 digits for int64.)
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

#include "CLI/CLI.hpp"

namespace kaon {

// A help footer for commands with SIZE flags.
inline constexpr const char* kSizeFormsHelp =
    "SIZE: 4096, or with a suffix: k m g t are powers of 1000 (4k = 4000), K M G T powers of 1024 (4K = 4096, "
    "16M = 16 MiB); a fraction must come out whole (1.5M).";

enum class IntegerForm {
  kSize,   // ParseSize's forms; never negative
  kPlain,  // decimal digits with an optional '-': ports, seeds, thread counts
};

// Checks the text against [lo, hi] and rewrites it as plain decimal digits,
// which CLI11 then stores into the option's integer. `hi_stated` false: hi is
// only the integer's width, so a value below lo is told "(at least lo)"
// rather than a range ending in 2147483647.
CLI::Validator IntegerIn(IntegerForm form, int64_t lo, int64_t hi, bool hi_stated = true);

struct NumberRange {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false;  // true: lo itself is out of range
  bool hi_open = false;
};

inline NumberRange AtLeast(double lo) { return {lo, std::numeric_limits<double>::infinity(), false, false}; }
inline NumberRange Above(double lo) { return {lo, std::numeric_limits<double>::infinity(), true, false}; }
inline NumberRange Between(double lo, double hi) { return {lo, hi, false, false}; }

// Checks a finite real number against `range`.
CLI::Validator NumberIn(const NumberRange& range);

namespace flag_detail {

template <typename T>
struct Stored {
  using type = T;
};
template <typename T>
struct Stored<std::optional<T>> {
  using type = T;
};

// The largest value the option's integer holds, capped at int64's.
template <typename T>
constexpr int64_t MaxOf() {
  using V = typename Stored<T>::type;
  constexpr auto v = std::numeric_limits<V>::max();
  return static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
             ? std::numeric_limits<int64_t>::max()
             : static_cast<int64_t>(v);
}

template <typename T>
constexpr int64_t MinOf() {
  using V = typename Stored<T>::type;
  return std::is_signed_v<V> ? static_cast<int64_t>(std::numeric_limits<V>::min()) : 0;
}

}  // namespace flag_detail

// A size flag in [lo, hi]; hi is also bounded by what `target` holds.
template <typename T>
CLI::Option* AddSizeOption(CLI::App* app, const std::string& name, T& target, const std::string& help,
                           int64_t lo = 0, int64_t hi = std::numeric_limits<int64_t>::max()) {
  return app->add_option(name, target, help)
      ->transform(IntegerIn(IntegerForm::kSize, lo, std::min(hi, flag_detail::MaxOf<T>()),
                            hi != std::numeric_limits<int64_t>::max()))
      ->type_name("SIZE");
}

// A plain integer flag in [lo, hi], both also bounded by `target`'s type.
template <typename T>
CLI::Option* AddIntegerOption(CLI::App* app, const std::string& name, T& target, const std::string& help,
                              int64_t lo = std::numeric_limits<int64_t>::min(),
                              int64_t hi = std::numeric_limits<int64_t>::max()) {
  return app->add_option(name, target, help)
      ->transform(IntegerIn(IntegerForm::kPlain, std::max(lo, flag_detail::MinOf<T>()),
                            std::min(hi, flag_detail::MaxOf<T>()), hi != std::numeric_limits<int64_t>::max()))
      ->type_name("INT");
}

template <typename T>
CLI::Option* AddNumberOption(CLI::App* app, const std::string& name, T& target, const std::string& help,
                             const NumberRange& range = {}) {
  return app->add_option(name, target, help)->check(NumberIn(range))->type_name("FLOAT");
}

}  // namespace kaon
