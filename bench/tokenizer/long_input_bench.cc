// Encode time of kaon's tokenizer on very long generated inputs: the case
// where a tokenizer without a whitespace pre-tokenizer (SentencePiece-style
// BPE) or a long run of letters makes one huge "word".
//   kaon_long_input_bench [--mb N] [--kinds K1,K2] MODEL_DIR...
// Kinds: english, spaces, letters, cjk, digits, base64, emoji, mixed. Each
// line gives seconds, token count and an FNV-1a hash of the ids, so builds
// can be compared for identical output as well as speed.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "server/tokenizer/tokenizer.h"

namespace {

constexpr const char* kKinds[] = {"english", "spaces", "letters", "cjk", "digits", "base64", "emoji", "mixed"};

// Seeded, so every run and build sees the same text.
std::string MakeInput(const std::string& kind, size_t bytes) {
  std::mt19937 rng(12345);
  std::string s;
  s.reserve(bytes + 64);
  auto repeat = [&](const std::string& unit) {
    while (s.size() + unit.size() <= bytes) s += unit;
  };
  if (kind == "spaces") {
    repeat(" ");
  } else if (kind == "letters") {
    repeat("a");
  } else if (kind == "cjk") {
    repeat("\xe4\xb8\x80");  // U+4E00
  } else if (kind == "digits") {
    repeat("7");
  } else if (kind == "emoji") {
    repeat("\xf0\x9f\x98\x80");  // U+1F600, byte fallback in SentencePiece vocabularies
  } else if (kind == "base64") {
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    while (s.size() < bytes) s += alphabet[rng() % alphabet.size()];
  } else {
    const bool mixed = kind == "mixed";
    static const char* kWords[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Once",
                                   "upon", "a", "time", "there", "was", "little", "girl", "named", "Lily",
                                   "She", "loved", "to", "play", "outside", "with", "her", "friends"};
    static const char* kMixed[] = {"  ", "\t", "\n", "\n\n", "\xe2\x96\x81", "\xf0\x9f\x98\x80", "\x01",
                                   "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "   ", "123", "don't"};
    while (s.size() < bytes) {
      s += kWords[rng() % (sizeof kWords / sizeof *kWords)];
      const unsigned k = rng() % 20;
      if (mixed && k < 4) {
        s += kMixed[rng() % (sizeof kMixed / sizeof *kMixed)];
      } else if (k == 4) {
        s += ". ";
      } else if (k == 5) {
        s += ",\n";
      } else {
        s += ' ';
      }
    }
    s.resize(bytes);
    // Cut back to a character boundary.
    while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
    if (!s.empty() && static_cast<unsigned char>(s.back()) >= 0xC0) s.pop_back();
  }
  return s;
}

uint64_t Fnv1a(const std::vector<int32_t>& ids) {
  uint64_t h = 1469598103934665603ull;
  for (int32_t id : ids) {
    for (int i = 0; i < 4; ++i) {
      h ^= (static_cast<uint32_t>(id) >> (8 * i)) & 0xFF;
      h *= 1099511628211ull;
    }
  }
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  double mb = 16;
  std::vector<std::string> kinds(std::begin(kKinds), std::end(kKinds));
  std::vector<std::string> dirs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--mb" && i + 1 < argc) {
      mb = std::atof(argv[++i]);
    } else if (a == "--kinds" && i + 1 < argc) {
      kinds.clear();
      std::stringstream ss(argv[++i]);
      for (std::string k; std::getline(ss, k, ',');) kinds.push_back(k);
    } else {
      dirs.push_back(a);
    }
  }
  if (dirs.empty()) {
    std::cerr << "usage: kaon_long_input_bench [--mb N] [--kinds K1,K2] MODEL_DIR...\n";
    return 2;
  }
  const auto bytes = static_cast<size_t>(mb * 1e6);
  for (const std::string& dir : dirs) {
    auto tok = kaon::Tokenizer::FromModelDir(dir);
    if (!tok.ok()) {
      std::cerr << tok.status() << "\n";
      return 1;
    }
    for (const std::string& kind : kinds) {
      const std::string text = MakeInput(kind, bytes);
      const auto t0 = std::chrono::steady_clock::now();
      const std::vector<int32_t> ids = (*tok)->Encode(text, false);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::cout << dir << " " << kind << " " << text.size() / 1e6 << " MB: " << s << " s, " << ids.size()
                << " ids, hash " << std::hex << Fnv1a(ids) << std::dec << std::endl;
    }
  }
  return 0;
}
