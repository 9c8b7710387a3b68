// Helpers for tests that run the real binaries on edited model directories:
// a scratch copy of a model, and the shape of a clean start-up failure.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/cli/run_command.h"

namespace kaon::testing {

// A scratch copy of a model directory, optionally edited by `edit`.
inline std::string CopyModel(const std::string& src,
                             const std::function<void(const std::filesystem::path&)>& edit = nullptr) {
  namespace fs = std::filesystem;
  static int counter = 0;
  const fs::path dir = fs::path(::testing::TempDir()) /
                       ("kaon_cli_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(src)) {
    fs::copy_file(e.path(), dir / e.path().filename());
    fs::permissions(dir / e.path().filename(), fs::perms::owner_write, fs::perm_options::add);
  }
  if (edit) edit(dir);
  return dir.string();
}

// Exited (not killed by a signal) with a non-zero code and exactly one line
// on stderr that holds every fragment.
inline void ExpectCleanFailure(const CommandResult& r, const std::vector<std::string>& fragments) {
  EXPECT_TRUE(r.exited) << "crashed: " << r.err;
  EXPECT_NE(r.exit_code, 0);
  for (const std::string& f : fragments) EXPECT_NE(r.err.find(f), std::string::npos) << "\"" << f << "\" not in: " << r.err;
  // One line: the message and its newline.
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace kaon::testing
