// Helpers shared by the fuzz targets: where the source tree is, loading the
// fixed inputs (tokenizers, templates) once, and a trap that names the broken
// invariant. Harnesses never assert on error text, only on properties the
// code under test documents.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace kaon::fuzz {

// The source root, compiled in so the fuzzers find models/ and tests/data/
// from any working directory; KAON_SOURCE_DIR overrides it (as for tests).
inline std::string SourceDir() {
  if (const char* s = std::getenv("KAON_SOURCE_DIR")) return s;
#ifdef KAON_FUZZ_SOURCE_DIR
  return KAON_FUZZ_SOURCE_DIR;
#else
  return ".";
#endif
}

// Setup failures (a missing model file) are not findings: say what is
// missing and stop, rather than fuzz a harness that cannot reach the code.
[[noreturn]] inline void SetupFailed(const std::string& what) {
  std::fprintf(stderr, "fuzz setup failed: %s\n", what.c_str());
  std::exit(2);
}

}  // namespace kaon::fuzz

// An invariant the code under test promises does not hold: print which one
// and trap, so libFuzzer (or the replay binary under ASan) records the input.
#define KAON_FUZZ_CHECK(cond)                                                                  \
  do {                                                                                         \
    if (!(cond)) [[unlikely]] {                                                                \
      std::fprintf(stderr, "fuzz invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      __builtin_trap();                                                                        \
    }                                                                                          \
  } while (0)
