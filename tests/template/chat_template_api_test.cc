// ChatTemplate's API: loading from a model directory, special tokens, error
// statuses and messages, sandbox limits, concurrency, and `kaon chat-template`.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/cli/chat_template_command.h"
#include "server/template/chat_template.h"
#include "server/template/interpreter.h"
#include "tests/common/temp_dir.h"

namespace kaon {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

ChatTemplateInputs Messages(const char* json) {
  ChatTemplateInputs in;
  in.messages = nlohmann::ordered_json::parse(json);
  return in;
}

TEST(ChatTemplate, ParseErrorHasLineAndColumn) {
  auto t = ChatTemplate::Parse("line one\n{% if x %}\n  {{ a + }}\n{% endif %}");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(t.status().message(), "chat template: line 3, column 10: unexpected 'end of print statement'");
  auto u = ChatTemplate::Parse("ok\nline2 {{ } }}");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().message(), "chat template: line 2, column 10: unexpected '}'");
}

TEST(ChatTemplate, RaiseExceptionIsInvalidArgumentWithTemplateMessage) {
  auto t = ChatTemplate::Parse("{{ raise_exception('Roles must alternate: ' ~ messages|length) }}");
  ASSERT_TRUE(t.ok());
  auto r = (*t)->Render(Messages(R"([{"role":"user","content":"x"}])"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "Roles must alternate: 1");
}

TEST(ChatTemplate, RuntimeErrorNamesLine) {
  auto t = ChatTemplate::Parse("a\n{% for m in messages %}\n{{ m.content.nope.x }}\n{% endfor %}");
  ASSERT_TRUE(t.ok());
  auto r = (*t)->Render(Messages(R"([{"role":"user","content":"x"}])"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "chat template: line 3: 'str object' has no attribute 'nope'");
}

// Builtins that take an integer argument (fuzz finding, tests/fuzz/corpus/
// jinja/regress-int-arg-*): anything else is the template's TypeError, as in
// Python, never an escaped std::bad_variant_access (an Internal error, a 500).
TEST(ChatTemplate, NonIntegerArgumentIsATypeErrorNotInternal) {
  const char* cases[] = {
      "{{ [1, 2, 3]|batch('2')|list }}", "{{ 'a'|center('9') }}",       "{{ 'a'|indent([]) }}",
      "{{ '10'|int(0, 'x') }}",          "{{ 'a'.ljust('x') }}",         "{{ 'a'.rjust(1.5) }}",
      "{{ 'a'.zfill('3') }}",            "{{ 'a'.center({}) }}",         "{{ 'aa'|replace('a', 'b', 'x') }}",
      "{{ 'ab'.replace('a', 'b', none) }}", "{{ 1.5|round('x') }}",      "{{ 'a b'.split(' ', 'x') }}",
  };
  for (const char* source : cases) {
    SCOPED_TRACE(source);
    auto t = ChatTemplate::Parse(source);
    ASSERT_TRUE(t.ok()) << t.status();
    auto r = (*t)->Render(Messages("[]"));
    ASSERT_FALSE(r.ok()) << *r;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("object cannot be interpreted as an integer"), std::string::npos)
        << r.status().message();
  }
  // Bools are ints in Python, so they still work.
  auto t = ChatTemplate::Parse("{{ 'a'|center(true) }}|{{ [1, 2]|batch(true)|list }}");
  ASSERT_TRUE(t.ok());
  auto r = (*t)->Render(Messages("[]"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "a|[[1], [2]]");
}

TEST(ChatTemplate, InputsAndKeyOrder) {
  auto t = ChatTemplate::Parse(
      "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}"
      "{{ tools|tojson }}|{{ documents }}|{{ add_generation_prompt }}|{{ enable_thinking }}|{{ eos_token }}");
  ASSERT_TRUE(t.ok());
  (*t)->SetSpecialTokens({{"bos_token", "<s>"}, {"eos_token", "</s>"}});
  ChatTemplateInputs in = Messages(R"([{"role":"user","content":"hi"}])");
  in.tools = nlohmann::ordered_json::parse(R"([{"z": 1, "a": {"y": 2, "b": 3}}])");
  in.add_generation_prompt = true;
  in.extra_kwargs["enable_thinking"] = false;
  auto r = (*t)->Render(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, R"(<s>user:hi;[{"z": 1, "a": {"y": 2, "b": 3}}]|None|True|False|</s>)");
}

TEST(ChatTemplate, FromModelDirPrefersJinjaFileThenConfig) {
  TempDir dir;
  dir.Write("tokenizer_config.json",
            R"({"bos_token": {"content": "<B>", "lstrip": false}, "eos_token": "<E>", "unk_token": null,
                "chat_template": "cfg {{ bos_token }}{{ eos_token }}{{ unk_token is defined }}"})");
  auto t = ChatTemplate::FromModelDir(dir.path());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*(*t)->Render(Messages("[]")), "cfg <B><E>False");
  dir.Write("chat_template.jinja", "file {{ bos_token }}\n");
  t = ChatTemplate::FromModelDir(dir.path());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*(*t)->Render(Messages("[]")), "file <B>");
  std::string override_path = dir.Write("other.jinja", "override {{ eos_token }}");
  t = ChatTemplate::FromModelDir(dir.path(), override_path);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*(*t)->Render(Messages("[]")), "override <E>");
}

TEST(ChatTemplate, FromModelDirNamedTemplates) {
  TempDir dir;
  dir.Write("tokenizer_config.json",
            R"({"chat_template": [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "dflt"}]})");
  auto t = ChatTemplate::FromModelDir(dir.path());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*(*t)->Render(Messages("[]")), "dflt");
}

TEST(ChatTemplate, FromModelDirWithoutTemplateSaysHowToSupplyOne) {
  TempDir dir;
  dir.Write("tokenizer_config.json", R"({"eos_token": "</s>"})");
  auto t = ChatTemplate::FromModelDir(dir.path());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("--chat-template"), std::string::npos) << t.status();
}

TEST(ChatTemplate, FromModelDirReportsParseErrorWithOrigin) {
  TempDir dir;
  dir.Write("chat_template.jinja", "{% for %}");
  auto t = ChatTemplate::FromModelDir(dir.path());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("line 1, column"), std::string::npos) << t.status();
}

TEST(ChatTemplate, LoopLimitIsAnErrorNotAHang) {
  auto t = ChatTemplate::Parse("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}");
  ASSERT_TRUE(t.ok());
  // Without the time budget, which a slow (sanitizer) build could reach first.
  jinja::Limits limits;
  limits.max_render_time = std::chrono::nanoseconds(0);
  (*t)->SetLimits(limits);
  auto r = (*t)->Render(Messages("[]"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("loop iterations"), std::string::npos) << r.status();
}

TEST(ChatTemplate, RecursionLimit) {
  auto t = ChatTemplate::Parse("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  ASSERT_TRUE(t.ok());
  auto r = (*t)->Render(Messages("[]"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("recursion"), std::string::npos) << r.status();
}

TEST(ChatTemplate, OutputLimit) {
  auto t = ChatTemplate::Parse(
      "{% set s = 'x' * 1000000 %}{% for i in range(100) %}{{ s }}{% endfor %}");
  ASSERT_TRUE(t.ok());
  auto r = (*t)->Render(Messages("[]"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  auto u = ChatTemplate::Parse("{{ 'x' * 100000000000 }}");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ((*u)->Render(Messages("[]")).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ChatTemplate, CustomLimits) {
  auto t = ChatTemplate::Parse("{% for i in range(20) %}.{% endfor %}");
  ASSERT_TRUE(t.ok());
  jinja::Limits limits;
  limits.max_loop_iterations = 10;
  (*t)->SetLimits(limits);
  EXPECT_EQ((*t)->Render(Messages("[]")).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ChatTemplate, DeepNestingIsAParseError) {
  std::string src = "{{ ";
  src.append(5000, '(').append("1").append(5000, ')').append(" }}");
  auto t = ChatTemplate::Parse(src);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("nesting"), std::string::npos) << t.status();
}

TEST(ChatTemplate, ConcurrentRenders) {
  auto t = ChatTemplate::Parse(
      "{% set ns = namespace(n=0) %}{% macro m(x) %}[{{ x }}]{% endmacro %}"
      "{% for msg in messages %}{% set ns.n = ns.n + 1 %}{{ m(msg.content) }}{% endfor %}{{ ns.n }}");
  ASSERT_TRUE(t.ok());
  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int k = 0; k < 8; ++k) {
    threads.emplace_back([&, k] {
      for (int i = 0; i < 200; ++i) {
        ChatTemplateInputs in;
        in.messages = nlohmann::ordered_json::array();
        for (int j = 0; j <= k; ++j) in.messages.push_back({{"role", "user"}, {"content", std::to_string(j)}});
        std::string want;
        for (int j = 0; j <= k; ++j) want.append("[").append(std::to_string(j)).append("]");
        want += std::to_string(k + 1);
        auto r = (*t)->Render(in);
        if (!r.ok() || *r != want) ++failures[k];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int k = 0; k < 8; ++k) EXPECT_EQ(failures[k], 0) << k;
}

TEST(ChatTemplateCommand, RendersStdinRequest) {
  TempDir dir;
  dir.Write("tokenizer_config.json", R"({"bos_token": "<s>", "chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}>{% endif %}{{ enable_thinking }}{{ extra }}"})");
  std::istringstream in(R"({"messages": [{"role": "user", "content": "héllo"}], "add_generation_prompt": true,
                            "chat_template_kwargs": {"enable_thinking": false}, "extra": 1})");
  std::ostringstream out, err;
  EXPECT_EQ(RunChatTemplateCommand(dir.path(), std::nullopt, in, out, err), 0) << err.str();
  EXPECT_EQ(out.str(), "<s>héllo>False1");
}

TEST(ChatTemplateCommand, RaiseExceptionGoesToStderr) {
  TempDir dir;
  std::string file = dir.Write("t.jinja", "{{ raise_exception('nope: bad roles') }}");
  std::istringstream in(R"({"messages": []})");
  std::ostringstream out, err;
  EXPECT_NE(RunChatTemplateCommand(dir.path(), file, in, out, err), 0);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(), "nope: bad roles\n");
}

TEST(ChatTemplateCommand, MissingTemplateAndBadInput) {
  TempDir dir;
  std::istringstream in(R"({"messages": []})");
  std::ostringstream out, err;
  EXPECT_NE(RunChatTemplateCommand(dir.path(), std::nullopt, in, out, err), 0);
  EXPECT_NE(err.str().find("--chat-template"), std::string::npos) << err.str();
  std::string file = dir.Write("t.jinja", "x");
  std::istringstream bad("not json");
  std::ostringstream out2, err2;
  EXPECT_NE(RunChatTemplateCommand(dir.path(), file, bad, out2, err2), 0);
  EXPECT_NE(err2.str().find("invalid JSON"), std::string::npos) << err2.str();
}

}  // namespace
}  // namespace kaon
