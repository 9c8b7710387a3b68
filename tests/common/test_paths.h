// Where tests find the source tree and built binaries (set by CTest).
#pragma once

#include <cstdlib>
#include <string>

namespace kaon::testing {

inline std::string SourceDir() {
  const char* s = std::getenv("KAON_SOURCE_DIR");
  return s ? s : ".";
}

inline std::string BinDir() {
  const char* s = std::getenv("KAON_BIN_DIR");
  return s ? s : "build/bin";
}

inline std::string TestModelDir(const std::string& name) {
  return SourceDir() + "/tests/data/models/" + name;
}

inline std::string BundledModelDir() { return SourceDir() + "/models/stories260k"; }

}  // namespace kaon::testing
