#include "bench/kaon_bench/progress.h"

#include <unistd.h>

#include <cstdio>

namespace kaon::bench {

Progress::Progress(std::string label, int total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), tty_(::isatty(2) != 0) {}

void Progress::Update(int done, int failed, double elapsed_s) {
  if (!enabled_ || total_ <= 0) return;
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = done * kWidth / total_;
    std::fprintf(stderr, "\r%s [%.*s%*s] %d/%d failed %d %.1fs", label_.c_str(), filled,
                 "##############################", kWidth - filled, "", done, total_, failed, elapsed_s);
    std::fflush(stderr);
    return;
  }
  const int decile = done * 10 / total_;
  if (decile == last_decile_) return;
  last_decile_ = decile;
  std::fprintf(stderr, "%s: %d/%d requests done (%d failed) after %.1f s\n", label_.c_str(), done, total_, failed,
               elapsed_s);
}

void Progress::Finish(int done, int failed, double elapsed_s) {
  if (!enabled_) return;
  Update(done, failed, elapsed_s);
  if (tty_) std::fprintf(stderr, "\n");
}

}  // namespace kaon::bench
