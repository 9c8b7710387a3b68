// Sizes on the command line in vLLM's human-readable forms (its
// `human_readable_int`): "4096"; a suffix k, m, g, t for powers of 1000
// ("4k" = 4,000) and K, M, G, T for powers of 1024 ("4K" = 4,096, "16M" =
// 16 MiB). One parser for every token count, request count and byte size that
// kaon and kaon-bench take, so they all accept the same forms.
//
// Accepted: digits, optionally followed by a fraction and a suffix ("1.5M" =
// 1,572,864, "25.6k" = 25,600), surrounded by optional spaces (vLLM strips
// them). A fraction must come to a whole number: "1.2345k" is refused where
// vLLM would silently truncate it to 1,234, and "1.5M" is accepted where vLLM
// refuses decimals with binary suffixes (the value is exact, so nothing is
// lost). Refused: signs ("-1k", "+4"), exponents ("1e3"), a fraction without a
// suffix ("1.5"), anything else after the number ("1kk", "4KiB", "1_000"),
// and values past int64.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kaon {

struct SizeParse {
  std::optional<int64_t> value;
  // When there is no value: why, phrased to follow the quoted text
  // ("is not a size (use ...)", "is not a whole number", "is too large").
  std::string error;
  bool too_large = false;  // past int64: a caller may report it against its own range
};

SizeParse ParseSize(std::string_view text);

}  // namespace kaon
