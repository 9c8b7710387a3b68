#include "server/tokenizer/byte_level.h"

#include <array>
#include <cstdint>

#include "server/common/utf8.h"

namespace kaon::byte_level {
namespace {

struct Tables {
  Tables() {
    cp_to_byte.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const char32_t cp = printable ? b : 256 + extra++;
      std::string s;
      utf8::Append(s, cp);
      byte_to_utf8[b] = s;
      cp_to_byte[cp] = static_cast<int16_t>(b);
    }
  }
  std::array<std::string, 256> byte_to_utf8;
  std::array<int16_t, 512> cp_to_byte;  // Mapped code points are all below 0x144.
};

const Tables& T() {
  static const Tables tables;
  return tables;
}

}  // namespace

void Encode(std::string_view bytes, std::string& out) {
  const Tables& t = T();
  for (char c : bytes) out += t.byte_to_utf8[static_cast<unsigned char>(c)];
}

bool Decode(std::string_view token, std::string& out) {
  const Tables& t = T();
  for (size_t i = 0; i < token.size();) {
    const char32_t cp = utf8::Next(token, i);
    if (cp >= t.cp_to_byte.size() || t.cp_to_byte[cp] < 0) return false;
    out.push_back(static_cast<char>(t.cp_to_byte[cp]));
  }
  return true;
}

}  // namespace kaon::byte_level
