// Chat templates: arbitrary template source + context -> ChatTemplate::Parse
// and Render, the sandboxed interpreter that renders client data.
//
// Input: template text, then optionally a NUL byte and a JSON object. Its
// "messages", "tools", "documents" and "add_generation_prompt" become the
// named inputs and every other key a chat_template_kwargs entry, as the API
// layer passes them. Without a NUL, or when the JSON does not parse as an
// object, a fixed four-message chat is rendered instead.
//
// The sandbox limits are far tighter than `kaon serve`'s defaults (5 ms,
// 256 KiB, 5,000 loop iterations and 10,000 container items instead of
// 1000 ms, 16 MiB and 1M): inputs that run into a limit are common under
// mutation, and at the defaults each would cost a second, starving the
// fuzzer. The limit code paths are the same at any setting.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "server/common/bounded_json.h"
#include "server/template/chat_template.h"
#include "server/template/limits.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using Json = nlohmann::ordered_json;

const kaon::jinja::Limits& FuzzLimits() {
  static const kaon::jinja::Limits limits = [] {
    kaon::jinja::Limits l;
    l.max_render_time = std::chrono::milliseconds(5);
    l.max_output_bytes = 256u << 10;
    l.max_container_items = 10'000;
    l.max_loop_iterations = 5'000;
    return l;
  }();
  return limits;
}

// chat_template.h: "No input ... keeps it running much past the budget".
// Generous slack: the machine may be busy, and ASan slows what lies between
// two clock reads. A render that overruns by a whole second is a finding.
constexpr auto kOverrunSlack = std::chrono::seconds(1);

const Json& DefaultMessages() {
  static const Json messages = Json::parse(
      R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"},
          {"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Tell me a story."}])");
  return messages;
}

kaon::ChatTemplateInputs InputsFrom(std::string_view json_text) {
  kaon::ChatTemplateInputs in;
  in.messages = DefaultMessages();
  in.add_generation_prompt = true;
  in.now_unix_seconds = 1722000000;  // strftime_now() without the real clock: reproducible renders
  // The API's JSON bounds (server/api/request_limits.h defaults).
  kaon::BoundedJsonResult parsed = kaon::ParseJsonBounded(json_text, {128, 500'000, 10'000});
  if (!parsed.ok() || !parsed.value.is_object()) return in;
  for (auto& [key, value] : parsed.value.items()) {
    if (key == "messages") in.messages = std::move(value);
    else if (key == "tools") in.tools = std::move(value);
    else if (key == "documents") in.documents = std::move(value);
    else if (key == "add_generation_prompt" && value.is_boolean()) in.add_generation_prompt = value.get<bool>();
    else in.extra_kwargs[key] = std::move(value);
  }
  return in;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string source(input.substr(0, nul));
  const std::string_view context = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);

  auto parsed = kaon::ChatTemplate::Parse(source);
  if (!parsed.ok()) {
    KAON_FUZZ_CHECK(parsed.status().code() != absl::StatusCode::kInternal);
    return 0;
  }
  kaon::ChatTemplate& tmpl = **parsed;
  tmpl.SetLimits(FuzzLimits());
  // The special tokens a real model's tokenizer_config.json would give.
  tmpl.SetSpecialTokens({{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}});

  const kaon::ChatTemplateInputs inputs = InputsFrom(context);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::string> out = tmpl.Render(inputs);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  KAON_FUZZ_CHECK(elapsed < FuzzLimits().max_render_time + kOverrunSlack);
  if (!out.ok()) {
    // Internal means an exception escaped the interpreter: a bug by its contract.
    KAON_FUZZ_CHECK(out.status().code() != absl::StatusCode::kInternal);
    return 0;
  }
  KAON_FUZZ_CHECK(out->size() <= FuzzLimits().max_output_bytes);
  return 0;
}
