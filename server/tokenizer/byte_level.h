// GPT-2's reversible byte <-> printable character mapping used by ByteLevel.
#pragma once

#include <string>
#include <string_view>

namespace kaon::byte_level {

// Appends the mapped characters of every byte of `bytes` to `out`.
void Encode(std::string_view bytes, std::string& out);

// Maps a token's characters back to bytes. Returns false (leaving out partly
// written) if some character is not in the mapping.
bool Decode(std::string_view token, std::string& out);

}  // namespace kaon::byte_level
