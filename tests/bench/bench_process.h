// Child processes for kaon-bench's end-to-end tests: a server that announces
// its port on stdout, a plain HTTP GET, and running kaon-bench itself.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace kaon::bench::testing {

class ChildServer {
 public:
  ~ChildServer() { Stop(); }

  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Starts argv and waits for a stdout line containing `marker`; the port is
  // the digits at the end of that line. False on timeout or early exit.
  bool Start(const std::vector<std::string>& argv, const std::string& marker, int timeout_s = 30) {
    int fds[2];
    if (::pipe(fds) != 0) return false;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    fd_ = fds[0];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[512];
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) return false;
      out_.append(buf, static_cast<size_t>(n));
      const size_t at = out_.find(marker);
      const size_t eol = at == std::string::npos ? std::string::npos : out_.find('\n', at);
      if (eol != std::string::npos) {
        const std::string line = out_.substr(at, eol - at);
        size_t digits = line.size();
        while (digits > 0 && std::isdigit(static_cast<unsigned char>(line[digits - 1]))) --digits;
        port_ = std::atoi(line.c_str() + digits);  // the number the line ends with
        return port_ > 0;
      }
    }
    return false;
  }

  int port() const { return port_; }
  const std::string& output() const { return out_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  int port_ = 0;
  std::string out_;
};

// GET http://127.0.0.1:port/path; the body, or "" on failure.
inline std::string HttpGet(int port, const std::string& path) {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return "";
  }
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  (void)!::write(s, req.data(), req.size());
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(s, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
  ::close(s);
  const size_t body = resp.find("\r\n\r\n");
  if (body == std::string::npos) return "";
  std::string b = resp.substr(body + 4);
  if (resp.find("chunked") != std::string::npos && resp.find("chunked") < body) {
    // De-chunk.
    std::string out;
    size_t pos = 0;
    while (pos < b.size()) {
      const size_t eol = b.find("\r\n", pos);
      if (eol == std::string::npos) break;
      const size_t len = std::stoul(b.substr(pos, eol - pos), nullptr, 16);
      if (len == 0) break;
      out += b.substr(eol + 2, len);
      pos = eol + 2 + len + 2;
    }
    return out;
  }
  return b;
}

// Runs build/bin/kaon-bench with args; returns its exit code and fills
// *output with stdout + stderr.
inline int RunKaonBench(const std::string& bin_dir, const std::string& args, std::string* output) {
  // One log per process (ctest may run several of these tests at once).
  const std::string log = ::testing::TempDir() + "/kaon_bench_run." + std::to_string(::getpid()) + ".log";
  const std::string cmd = bin_dir + "/kaon-bench " + args + " > " + log + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  *output = "$ " + cmd + "\n" + ss.str();
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace kaon::bench::testing
