// GPU full-model check (part 2 of tests/gpu/check.sh): runs stories260k and
// every tiny fixture through the CUDA backend in fp32 and checks the greedy
// ids against golden.json / reference.json token for token, and the logits
// against the CPU backend's within 1e-4. Also runs bf16 and reports (does not
// gate on) its agreement. Prints a table; exit 1 on any failure; exit 0 with
// "no CUDA device" where there is none.
//
//   kaon_gpu_model_check SOURCE_DIR
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "server/backend/cuda/cuda_decoder.h"
#include "nlohmann/json.hpp"
#include "server/engine/offline_engine.h"

namespace {

using Json = nlohmann::json;

struct Case {
  std::string model;
  std::vector<int32_t> prompt;
  std::vector<int32_t> expected;
};

std::vector<Case> Cases(const std::string& src) {
  std::vector<Case> out;
  const Json g = Json::parse(std::ifstream(src + "/models/stories260k/golden.json"));
  for (const Json& c : g["cases"]) {
    out.push_back({src + "/models/stories260k", c["prompt_token_ids"].get<std::vector<int32_t>>(),
                   c["greedy_token_ids"].get<std::vector<int32_t>>()});
  }
  for (const char* m : {"tiny-llama3", "tiny-qwen2", "tiny-qwen2-sharded", "tiny-qwen3", "tiny-mistral"}) {
    const std::string dir = src + "/tests/data/models/" + m;
    const Json r = Json::parse(std::ifstream(dir + "/reference.json"));
    for (const Json& c : r["cases"]) {
      out.push_back({dir, c["prompt_token_ids"].get<std::vector<int32_t>>(),
                     c["greedy_token_ids"].get<std::vector<int32_t>>()});
    }
  }
  return out;
}

kaon::EngineOptions Options(const std::string& dtype) {
  kaon::EngineOptions o;
  o.max_model_len = 512;
  o.max_num_seqs = 4;
  o.num_threads = 4;
  if (!dtype.empty()) {
    o.model_loader = [dtype](const std::string& dir, const kaon::ModelInfo& info, const kaon::ModelCapacity& cap) {
      return kaon::LoadCudaModel(dir, info, cap, dtype);
    };
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  if (kaon::CudaDeviceCount() == 0) {
    std::printf("no CUDA device\n");
    return 0;
  }
  const std::string src = argc > 1 ? argv[1] : ".";
  int failures = 0;
  std::printf("%-28s %-6s %8s %12s %10s %s\n", "model", "dtype", "ids", "max|dlogit|", "ms", "result");
  for (const char* dtype : {"float32", "bfloat16"}) {
    const bool gate = std::string(dtype) == "float32";
    std::string current;
    std::unique_ptr<kaon::OfflineEngine> gpu, cpu;
    for (const Case& c : Cases(src)) {
      if (c.model != current) {
        current = c.model;
        auto g = kaon::OfflineEngine::Create(c.model, Options(dtype));
        auto h = kaon::OfflineEngine::Create(c.model, Options(""));
        if (!g.ok() || !h.ok()) {
          std::printf("%-28s %-6s load failed: %s %s\n", c.model.c_str(), dtype,
                      std::string(g.status().message()).c_str(), std::string(h.status().message()).c_str());
          ++failures;
          gpu.reset();
          continue;
        }
        gpu = std::move(*g);
        cpu = std::move(*h);
      }
      if (!gpu) continue;
      kaon::GenerateRequest r;
      r.prompt_ids = c.prompt;
      r.max_tokens = static_cast<int64_t>(c.expected.size());
      r.ignore_eos = true;
      r.sampling.temperature = 0;
      r.keep_logits_steps = 1;
      const auto t0 = std::chrono::steady_clock::now();
      auto got = gpu->Generate(r);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      auto ref = cpu->Generate(r);
      if (!got.ok() || !ref.ok()) {
        std::printf("%-28s %-6s generate failed: %s\n", c.model.c_str(), dtype,
                    std::string(got.ok() ? ref.status().message() : got.status().message()).c_str());
        ++failures;
        continue;
      }
      size_t same = 0;
      while (same < c.expected.size() && same < got->token_ids.size() && got->token_ids[same] == c.expected[same]) {
        ++same;
      }
      double diff = 0;
      for (size_t i = 0; i < ref->logits[0].size(); ++i) {
        const double d = std::fabs(static_cast<double>(got->logits[0][i]) - ref->logits[0][i]);
        diff = std::isnan(d) ? INFINITY : std::max(diff, d);
      }
      const bool ok = same == c.expected.size() && diff <= 1e-4;
      if (gate && !ok) ++failures;
      const std::string name = c.model.substr(c.model.find_last_of('/') + 1);
      std::printf("%-28s %-6s %4zu/%-3zu %12.3g %10.1f %s\n", name.c_str(), dtype, same, c.expected.size(), diff, ms,
                  ok ? "PASS" : (gate ? "FAIL" : "info"));
    }
  }
  std::printf("model check: %s\n", failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}
