// A fresh directory under the system temp dir for one test, removed with it.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace kaon::testing {

class TempDir {
 public:
  TempDir() {
    // pid + counter: unique across test binaries running in parallel.
    path_ = std::filesystem::temp_directory_path() /
            ("kaon_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Converts to std::string where a directory name is wanted.
  const std::filesystem::path& path() const { return path_; }
  // Writes `content` to path()/name (bytes as given) and returns that path.
  std::string Write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ / name, std::ios::binary) << content;
    return (path_ / name).string();
  }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

}  // namespace kaon::testing
