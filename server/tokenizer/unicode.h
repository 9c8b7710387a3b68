// The few Unicode properties tokenization needs, with Rust's definitions.
#pragma once

#include <string>
#include <string_view>

namespace kaon::unicode {

// Rust's char::is_whitespace (the White_Space property).
bool IsWhiteSpace(char32_t cp);

// Canonical composition (NFC) of valid UTF-8, as the unicode-normalization
// crate does it. Returns false and leaves *out untouched when s is already NFC.
bool ToNfc(std::string_view s, std::string* out);

}  // namespace kaon::unicode
