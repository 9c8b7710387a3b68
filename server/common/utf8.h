// UTF-8 helpers with Rust's semantics for invalid input, because HF tokenizers
// is written in Rust and its lossy conversions decide what decode() returns.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kaon::utf8 {

inline constexpr char32_t kReplacement = 0xFFFD;

// Length of the valid sequence starting at s[i], or 0 if it is invalid.
// *invalid_len receives the length of the maximal invalid subpart when 0 is
// returned (always >= 1), which is what one U+FFFD replaces.
size_t ValidSequenceLength(std::string_view s, size_t i, size_t* invalid_len);

// Decodes the code point at s[i] and advances i; an invalid subpart decodes
// to U+FFFD.
char32_t Next(std::string_view s, size_t& i);

void Append(std::string& out, char32_t cp);

bool IsValid(std::string_view s);

// Rust's String::from_utf8_lossy: each maximal invalid subpart becomes U+FFFD.
std::string Lossy(std::string_view bytes);

// Length of the longest prefix of s that does not end inside an incomplete
// (but so far valid) multi-byte sequence.
size_t CompletePrefixLength(std::string_view s);

}  // namespace kaon::utf8
