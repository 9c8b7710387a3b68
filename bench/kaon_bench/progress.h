// Progress of a run on stderr: a redrawn bar on a terminal, a plain line per
// 10% otherwise (CI logs), nothing with --disable-tqdm.
#pragma once

#include <string>

namespace kaon::bench {

class Progress {
 public:
  Progress(std::string label, int total, bool enabled);
  void Update(int done, int failed, double elapsed_s);
  void Finish(int done, int failed, double elapsed_s);

 private:
  std::string label_;
  int total_;
  bool enabled_, tty_;
  int last_decile_ = -1;
};

}  // namespace kaon::bench
