// Runs a command line through the shell and captures its exit status, stdout
// and stderr, so tests can drive the real binaries.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace kaon::testing {

struct CommandResult {
  bool exited = false;  // false: killed by a signal (a crash)
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline CommandResult RunCommand(const std::string& cmd, const std::string& stdin_text = "") {
  static int counter = 0;
  const std::string base = "/tmp/kaon_cmd_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  std::ofstream(base + ".in") << stdin_text;
  const std::string full = cmd + " <" + base + ".in >" + base + ".out 2>" + base + ".err";
  const int status = std::system(full.c_str());
  CommandResult r;
  r.exited = WIFEXITED(status);
  r.exit_code = r.exited ? WEXITSTATUS(status) : -1;
  // The shell reports a signal-killed child as 128 + signal.
  if (r.exited && r.exit_code > 128) r.exited = false;
  auto slurp = [](const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  r.out = slurp(base + ".out");
  r.err = slurp(base + ".err");
  for (const char* ext : {".in", ".out", ".err"}) std::remove((base + ext).c_str());
  return r;
}

inline std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

}  // namespace kaon::testing
