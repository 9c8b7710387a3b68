#include "server/tokenizer/unicode.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "server/common/utf8.h"

namespace kaon::unicode {
namespace {

struct CccRange {
  char32_t first, last;
  uint8_t ccc;
};
struct CpRange {
  char32_t first, last;
};
struct Decomposition {
  char32_t cp;
  uint16_t offset;
  uint8_t length;
};
struct Composition {
  char32_t first, second, composed;
};

#include "server/tokenizer/unicode_tables.inc"

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
              kSCount = kLCount * kNCount;

uint8_t Ccc(char32_t cp) {
  if (cp < 0x300) return 0;
  auto it = std::upper_bound(std::begin(kCccRanges), std::end(kCccRanges), cp,
                             [](char32_t c, const CccRange& r) { return c < r.first; });
  if (it == std::begin(kCccRanges)) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

bool NeedsAttention(char32_t cp) {
  if (cp < 0x300) return false;
  auto it = std::upper_bound(std::begin(kNfcAttention), std::end(kNfcAttention), cp,
                             [](char32_t c, const CpRange& r) { return c < r.first; });
  if (it == std::begin(kNfcAttention)) return false;
  --it;
  return cp <= it->last;
}

void Decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const int s = static_cast<int>(cp - kSBase);
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  auto it = std::lower_bound(std::begin(kDecompositions), std::end(kDecompositions), cp,
                             [](const Decomposition& d, char32_t c) { return d.cp < c; });
  if (it != std::end(kDecompositions) && it->cp == cp) {
    out.insert(out.end(), kDecompositionPool + it->offset,
               kDecompositionPool + it->offset + it->length);
  } else {
    out.push_back(cp);
  }
}

// Returns 0 when the pair has no primary composite.
char32_t Compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  auto it = std::lower_bound(std::begin(kCompositions), std::end(kCompositions),
                             std::pair(a, b), [](const Composition& c, std::pair<char32_t, char32_t> k) {
                               return c.first != k.first ? c.first < k.first : c.second < k.second;
                             });
  if (it != std::end(kCompositions) && it->first == a && it->second == b) return it->composed;
  return 0;
}

}  // namespace

bool IsWhiteSpace(char32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool ToNfc(std::string_view s, std::string* out) {
  // Quick check: text with no decomposable-but-excluded characters, no
  // combining marks and nothing that composes backwards is already NFC.
  bool needed = false;
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0xCC) {
      // Lead bytes below 0xCC encode code points below U+0300.
      i += static_cast<unsigned char>(s[i]) < 0x80 ? 1 : 2;
      continue;
    }
    if (NeedsAttention(utf8::Next(s, i))) {
      needed = true;
      break;
    }
  }
  if (!needed) return false;

  std::vector<char32_t> cps;
  cps.reserve(s.size());
  for (size_t i = 0; i < s.size();) Decompose(utf8::Next(s, i), cps);

  // Canonical ordering: stable sort each run of non-starters by class.
  for (size_t i = 0; i < cps.size();) {
    if (Ccc(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && Ccc(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + i, cps.begin() + j,
                     [](char32_t a, char32_t b) { return Ccc(a) < Ccc(b); });
    i = j;
  }

  // Canonical composition with the blocking rule.
  std::vector<char32_t> res;
  res.reserve(cps.size());
  size_t starter = SIZE_MAX;
  int last_ccc = -1;
  for (char32_t cp : cps) {
    const int ccc = Ccc(cp);
    if (starter != SIZE_MAX) {
      const bool blocked = last_ccc != -1 && (last_ccc == 0 || last_ccc >= ccc);
      if (!blocked) {
        if (char32_t c = Compose(res[starter], cp)) {
          res[starter] = c;
          continue;
        }
      }
    }
    if (ccc == 0) {
      starter = res.size();
      last_ccc = -1;
    } else {
      last_ccc = ccc;
    }
    res.push_back(cp);
  }
  out->clear();
  out->reserve(s.size());
  for (char32_t cp : res) utf8::Append(*out, cp);
  return true;
}

}  // namespace kaon::unicode
