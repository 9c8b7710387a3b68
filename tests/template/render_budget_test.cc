// The wall-time budget of a render (jinja::Limits::max_render_time): renders that
// would run for seconds or forever, with templates of their own and with a real
// chat template fed client data, stop with ResourceExhausted shortly after the
// budget. A small budget set through SetLimits keeps each test fast.
#include <time.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/common/files.h"
#include "server/template/budget.h"
#include "server/template/chat_template.h"
#include "server/template/limits.h"
#include "server/template/value.h"

namespace kaon {
namespace {

using Json = nlohmann::ordered_json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kBudget(100);

// CPU time of the calling thread, where Render runs.
milliseconds ThreadCpuTime() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return milliseconds(static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000);
}

struct Timed {
  absl::StatusOr<std::string> result;
  milliseconds elapsed;  // wall time, what the budget limits
  milliseconds cpu;
};

Timed RenderTimed(const ChatTemplate& t, const ChatTemplateInputs& in) {
  const auto start = Clock::now();
  const milliseconds cpu_start = ThreadCpuTime();
  absl::StatusOr<std::string> r = t.Render(in);
  return {std::move(r), std::chrono::duration_cast<milliseconds>(Clock::now() - start), ThreadCpuTime() - cpu_start};
}

std::unique_ptr<ChatTemplate> ParseWithBudget(const std::string& source, milliseconds budget) {
  auto t = ChatTemplate::Parse(source);
  EXPECT_TRUE(t.ok()) << t.status();
  if (!t.ok()) return nullptr;
  jinja::Limits limits;
  limits.max_render_time = budget;
  (*t)->SetLimits(limits);
  return std::move(*t);
}

ChatTemplateInputs Messages(Json messages) {
  ChatTemplateInputs in;
  in.messages = std::move(messages);
  return in;
}

// Templates that stay within every limit but time, each with inputs that make it
// run for seconds (quadratic or exponential work) or more.
struct SlowCase {
  const char* name;
  const char* source;
  ChatTemplateInputs (*inputs)();
};

ChatTemplateInputs NoInputs() { return Messages(Json::array()); }

ChatTemplateInputs ManyWords() {
  std::string words;
  for (int i = 0; i < 200000; ++i) {
    words += i ? " w" : "w";
    words += std::to_string(i);
  }
  return Messages(Json::array({{{"role", "user"}, {"content", words}}}));
}

// nlohmann's ordered objects insert with a linear search for the key, so the
// keys (distinct by construction) are appended to the underlying vector.
ChatTemplateInputs WideTool() {
  ChatTemplateInputs in = NoInputs();
  Json tool = Json::object();
  auto& entries = static_cast<Json::object_t::Container&>(tool.get_ref<Json::object_t&>());
  for (int i = 0; i < 100000; ++i) {
    std::string key = "k";
    key += std::to_string(i);
    entries.emplace_back(std::move(key), Json(i));
  }
  in.tools = Json::array();
  in.tools.push_back(std::move(tool));
  return in;
}

const SlowCase kSlowCases[] = {
    // ns.s grows by 10 bytes per iteration and is copied each time: 50 GB in all.
    {"QuadraticConcatenation",
     "{% set ns = namespace(s='') %}{% for i in range(100000) %}{% set ns.s = ns.s + '0123456789' %}"
     "{% endfor %}{{ ns.s|length }}",
     NoInputs},
    // One filter call doing 2e10 comparisons: the budget is checked inside it.
    {"UniqueOfManyDistinctStrings", "{{ messages[0].content.split(' ')|unique|list|length }}", ManyWords},
    // A client dict of 100k keys looked up by each of its keys: 5e9 key comparisons.
    {"LookupsInAWideClientDict", "{% for k in tools[0] %}{% if tools[0][k] > 0 %}{% endif %}{% endfor %}", WideTool},
    // 2^31 macro calls that print nothing and loop nowhere.
    {"ExponentialMacroCalls",
     "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(30) }}", NoInputs},
};

class SlowRender : public ::testing::TestWithParam<SlowCase> {};

TEST_P(SlowRender, StopsShortlyAfterTheBudget) {
  auto t = ParseWithBudget(GetParam().source, kBudget);
  ASSERT_NE(t, nullptr);
  const ChatTemplateInputs in = GetParam().inputs();
  Timed r = RenderTimed(*t, in);
  ASSERT_FALSE(r.result.ok()) << "rendered " << r.result->size() << " bytes in " << r.elapsed.count() << " ms";
  EXPECT_EQ(r.result.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(r.result.status().message(),
            "chat template: rendering exceeded the 100 ms budget (--max-chat-template-render-ms)");
  EXPECT_GE(r.elapsed, kBudget);
  EXPECT_LT(r.elapsed, 3 * kBudget);
}

INSTANTIATE_TEST_SUITE_P(Budget, SlowRender, ::testing::ValuesIn(kSlowCases),
                         [](const auto& info) { return std::string(info.param.name); });

// Per-character builtins over 16 MB take a quarter of a second here and check
// the budget as they go, so a budgeted render stops long before an unbudgeted
// one finishes. (Decoding the UTF-8 before each loop is not charged, so the two
// are compared in CPU time, which a loaded machine does not stretch.)
TEST(RenderBudget, LongPrimitivesCheckTheBudgetAsTheyGo) {
  constexpr milliseconds kShort(10);
  for (const char* op : {"s|title", "s[::-1]"}) {
    const std::string source =
        std::string("{% set s = 'h\u00e9llo w\u00f6rld. ' * 1100000 %}{{ (") + op + ")|string|length }}";
    auto unbudgeted = ParseWithBudget(source, milliseconds(0));
    ASSERT_NE(unbudgeted, nullptr);
    Timed full = RenderTimed(*unbudgeted, NoInputs());
    ASSERT_TRUE(full.result.ok()) << op << ": " << full.result.status();
    if (full.cpu < 4 * kShort) continue;  // a machine too fast for this check
    auto t = ParseWithBudget(source, kShort);
    ASSERT_NE(t, nullptr);
    Timed r = RenderTimed(*t, NoInputs());
    ASSERT_FALSE(r.result.ok()) << op << " rendered in " << r.elapsed.count() << " ms";
    EXPECT_EQ(r.result.status().code(), absl::StatusCode::kResourceExhausted) << op;
    EXPECT_LT(r.cpu, full.cpu / 2) << op << ": the whole render takes " << full.cpu.count() << " ms of CPU";
  }
}

// Meta's Llama 3.1 template looks each tool call's name up in `builtin_tools`
// (chat_template_kwargs) with a linear scan. 2,000 assistant tool calls against
// 200,000 builtin tools is 4e8 comparisons, seconds of work, in a 1.2 MB body;
// at the request limits (10,000 messages, a million JSON values) it is ~50 s.
TEST(RenderBudget, RealTemplateWithClientDataStops) {
  auto source = ReadFileToString(std::string(KAON_SOURCE_DIR) + "/tests/data/templates/llama3_1_meta.jinja");
  ASSERT_TRUE(source.ok()) << source.status();
  auto t = ParseWithBudget(*source, kBudget);
  ASSERT_NE(t, nullptr);
  Json messages = Json::array({{{"role", "user"}, {"content", "hi"}}});
  const Json call = {{"type", "function"}, {"function", {{"name", "zz"}, {"arguments", Json::object()}}}};
  for (int i = 0; i < 2000; ++i) messages.push_back({{"role", "assistant"}, {"tool_calls", Json::array({call})}});
  ChatTemplateInputs in = Messages(std::move(messages));
  in.extra_kwargs["builtin_tools"] = Json(std::vector<std::string>(200000, "a"));
  Timed r = RenderTimed(*t, in);
  ASSERT_FALSE(r.result.ok()) << "rendered in " << r.elapsed.count() << " ms";
  EXPECT_EQ(r.result.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(r.result.status().message(),
            "chat template: rendering exceeded the 100 ms budget (--max-chat-template-render-ms)");
  EXPECT_LT(r.elapsed, 3 * kBudget);

  // The same conversation with a handful of builtin tools renders well within it.
  in.extra_kwargs["builtin_tools"] = Json::array({"brave_search", "wolfram_alpha"});
  r = RenderTimed(*t, in);
  ASSERT_TRUE(r.result.ok()) << r.result.status();
  EXPECT_LT(r.elapsed, kBudget);
}

TEST(RenderBudget, MessageNamesTheBudget) {
  auto t = ParseWithBudget("{% for i in range(100000) %}{% for j in range(9) %}{% endfor %}{% endfor %}",
                           milliseconds(1));
  ASSERT_NE(t, nullptr);
  auto r = t->Render(NoInputs());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "chat template: rendering exceeded the 1 ms budget (--max-chat-template-render-ms)");
}

TEST(RenderBudget, ZeroMeansNoTimeLimit) {
  auto t = ParseWithBudget("{% for i in range(100000) %}{% endfor %}done", milliseconds(0));
  ASSERT_NE(t, nullptr);
  auto r = t->Render(NoInputs());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "done");
}

TEST(RenderBudget, DefaultsAreTheServeFlagsDefaults) {
  const jinja::Limits limits;
  EXPECT_EQ(limits.max_render_time, milliseconds(1000));
  EXPECT_EQ(limits.max_output_bytes, size_t{16} << 20);
}

// The budget reads the clock every kUnitsPerClockRead units of work, so unit-sized
// charges notice the deadline within a small fraction of it.
TEST(Budget, ChargesNoticeTheDeadlinePromptly) {
  jinja::Limits limits;
  limits.max_render_time = milliseconds(50);
  const auto start = Clock::now();
  jinja::Budget budget(limits);
  try {
    for (;;) budget.Charge(1);
  } catch (const jinja::TemplateError& e) {
    EXPECT_EQ(e.code, absl::StatusCode::kResourceExhausted);
    EXPECT_TRUE(e.verbatim);
  }
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, milliseconds(50));
  EXPECT_LT(elapsed, milliseconds(150));
}

TEST(Budget, RepetitionsThatOverflowAreRefused) {
  jinja::Limits limits;
  jinja::Budget budget(limits);
  EXPECT_THROW(budget.CheckRepeatedString(16, size_t{1} << 60), jinja::TemplateError);
  EXPECT_THROW(budget.CheckRepeatedItems(3, SIZE_MAX / 2), jinja::TemplateError);
  EXPECT_NO_THROW(budget.CheckRepeatedString(1024, 1024));
}

}  // namespace
}  // namespace kaon
