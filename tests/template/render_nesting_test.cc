// Deeply nested values: client JSON deeper than jinja::kMaxInputNesting is
// refused, and values a template nests arbitrarily deep (or makes cyclic) are
// walked to an error and freed, never overflowing the stack.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/template/chat_template.h"
#include "server/template/json_io.h"

namespace kaon {
namespace {

using Json = nlohmann::ordered_json;

std::string NestedLists(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::unique_ptr<ChatTemplate> Parse(const std::string& source) {
  auto t = ChatTemplate::Parse(source);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

// nlohmann parses and frees deep JSON without recursion, but copies it
// recursively: the deep values are moved into place, never copied.
ChatTemplateInputs WithDeepContent(int depth) {
  ChatTemplateInputs in;
  Json message = Json::object();
  message["role"] = "user";
  message["content"] = Json::parse(NestedLists(depth));
  in.messages = Json::array();
  in.messages.push_back(std::move(message));
  return in;
}

TEST(RenderNesting, DeepClientJsonIsAnErrorNotACrash) {
  auto t = Parse("{{ messages[0].content|length }}");
  ASSERT_NE(t, nullptr);
  auto r = t->Render(WithDeepContent(100000));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status().message(), "chat template: the input nests deeper than 256 levels");

  for (const char* field : {"tools", "documents", "kwargs"}) {
    ChatTemplateInputs in;
    in.messages = Json::array();
    Json deep = Json::parse(NestedLists(100000));
    if (std::string(field) == "tools") in.tools = std::move(deep);
    else if (std::string(field) == "documents") in.documents = std::move(deep);
    else in.extra_kwargs["x"] = std::move(deep);
    auto f = t->Render(in);
    ASSERT_FALSE(f.ok()) << field;
    EXPECT_EQ(f.status().code(), absl::StatusCode::kResourceExhausted) << field;
  }
}

TEST(RenderNesting, InputNestingLimitIsExact) {
  auto t = Parse("{{ x|tojson }}");
  ASSERT_NE(t, nullptr);
  ChatTemplateInputs in;
  in.messages = Json::array();
  in.extra_kwargs["x"] = Json::parse(NestedLists(jinja::kMaxInputNesting));
  auto r = t->Render(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, NestedLists(jinja::kMaxInputNesting));
  in.extra_kwargs["x"] = Json::parse(NestedLists(jinja::kMaxInputNesting + 1));
  EXPECT_EQ(t->Render(in).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(RenderNesting, ModeratelyDeepContentRendersAsJinja2Would) {
  auto t = Parse("{{ messages[0].content|tojson }}|{{ messages[0].content|string|length }}");
  ASSERT_NE(t, nullptr);
  auto r = t->Render(WithDeepContent(200));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, NestedLists(200) + "|400");
}

// 100,000 levels: far more than the stack could take recursively.
constexpr const char* kDeepList =
    "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}";
constexpr const char* kDeepDict =
    "{% set ns = namespace(x={}) %}{% for i in range(100000) %}{% set ns.x = {'a': ns.x} %}{% endfor %}";

TEST(RenderNesting, DeepTemplateValuesAreFreedWithoutRecursion) {
  for (const char* build : {kDeepList, kDeepDict}) {
    auto t = Parse(std::string(build) + "{{ ns.x|length }}");
    ASSERT_NE(t, nullptr);
    auto r = t->Render({});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, "1");
  }
}

TEST(RenderNesting, WalkingDeepTemplateValuesIsAnError) {
  struct Walk {
    const char* build;
    const char* walk;
  };
  const Walk walks[] = {
      {kDeepList, "{{ ns.x }}"},
      {kDeepList, "{{ ns.x|string }}"},
      {kDeepList, "{{ ns.x|tojson }}"},
      {kDeepList, "{{ ns.x == [ns.x] }}"},
      {kDeepList, "{{ [ns.x] < [[ns.x]] }}"},
      {kDeepList, "{{ ns.x in [[ns.x]] }}"},
      {kDeepList, "{{ [ns.x, 1]|unique|list|length }}{{ [[ns.x], ns.x]|unique|list|length }}"},
      {kDeepDict, "{{ ns.x }}"},
      {kDeepDict, "{{ ns.x|tojson }}"},
      {kDeepDict, "{{ ns.x|tojson(sort_keys=true) }}"},
      {kDeepDict, "{{ ns.x == {'a': ns.x} }}"},
  };
  for (const Walk& w : walks) {
    auto t = Parse(std::string(w.build) + w.walk);
    ASSERT_NE(t, nullptr);
    auto r = t->Render({});
    ASSERT_FALSE(r.ok()) << w.walk << " rendered " << r->size() << " bytes";
    EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << w.walk;
    EXPECT_NE(r.status().message().find("nests deeper than 512 levels"), std::string::npos)
        << w.walk << ": " << r.status();
  }
}

TEST(RenderNesting, NamespaceThatHoldsItself) {
  auto t = Parse("{% set ns = namespace(n=1) %}{% set ns.me = ns %}{{ ns.me.me.me.n }}");
  ASSERT_NE(t, nullptr);
  auto r = t->Render({});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "1");
  auto printed = Parse("{% set ns = namespace() %}{% set ns.me = [ns] %}{{ ns }}");
  ASSERT_NE(printed, nullptr);
  auto p = printed->Render({});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(RenderNesting, RecursiveLoopDepthIsBounded) {
  auto t = Parse("{% for x in [tree] recursive %}.{{ loop(x) }}{% endfor %}");
  ASSERT_NE(t, nullptr);
  ChatTemplateInputs in;
  in.messages = Json::array();
  in.extra_kwargs["tree"] = Json::parse(NestedLists(200));
  auto r = t->Render(in);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("maximum recursion depth"), std::string::npos) << r.status();
  in.extra_kwargs["tree"] = Json::parse(NestedLists(50));
  r = t->Render(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, std::string(50, '.'));
}

}  // namespace
}  // namespace kaon
