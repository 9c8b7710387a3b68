// bench/machine_limits: this machine's read bandwidth and sgemm rates, the
// yardsticks of the CPU backend's targets.
//   kaon_machine_limits [--threads N] [--config bench/configs/llama-70m.json]
// The config gives the sgemm shape: K = hidden_size, N = intermediate_size.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "bench/machine_limits.h"
#include "nlohmann/json.hpp"

int main(int argc, char** argv) {
  int threads = 2;
  std::string config = std::string(KAON_SOURCE_DIR) + "/bench/configs/llama-70m.json";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--threads") == 0) {
      threads = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--config") == 0) {
      config = argv[i + 1];
    } else {
      std::fprintf(stderr, "kaon_machine_limits: unknown flag %s (--threads N, --config FILE)\n", argv[i]);
      return 1;
    }
  }
  if (threads < 1 || threads > 1024) {
    std::fprintf(stderr, "kaon_machine_limits: --threads must be in [1, 1024]\n");
    return 1;
  }
  std::ifstream in(config);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("hidden_size") || !j.contains("intermediate_size")) {
    std::fprintf(stderr, "kaon_machine_limits: %s: no hidden_size / intermediate_size\n", config.c_str());
    return 1;
  }
  const auto limits = kaon::bench::MeasureMachineLimits(threads, j["hidden_size"].get<int64_t>(),
                                                        j["intermediate_size"].get<int64_t>());
  std::fputs(kaon::bench::FormatMachineLimits(limits).c_str(), stdout);
  return 0;
}
