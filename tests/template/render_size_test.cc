// The size caps of a render (jinja::Limits::max_output_bytes for every string,
// max_container_items for every list and dict) apply to the values a render
// builds along the way, not only to its output: a string built in a variable
// and never printed, or a list grown in a loop, stops the render too.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/template/chat_template.h"
#include "server/template/limits.h"

namespace kaon {
namespace {

constexpr size_t kMaxBytes = 1000;
constexpr size_t kMaxItems = 100;

jinja::Limits SmallCaps() {
  jinja::Limits limits;
  limits.max_output_bytes = kMaxBytes;
  limits.max_container_items = kMaxItems;
  return limits;
}

absl::StatusOr<std::string> Render(const std::string& source, const jinja::Limits& limits) {
  auto t = ChatTemplate::Parse(source);
  if (!t.ok()) return t.status();
  (*t)->SetLimits(limits);
  ChatTemplateInputs in;
  in.messages = nlohmann::ordered_json::array();
  return (*t)->Render(in);
}

TEST(RenderSize, OutputCapNamesTheFlag) {
  auto r = Render("{% for i in range(2000) %}x{% endfor %}", SmallCaps());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status().message(),
            "chat template: line 1: rendering built a string of more than 1000 bytes "
            "(--max-chat-template-output-bytes)");
  auto ok = Render("{% for i in range(1000) %}x{% endfor %}", SmallCaps());
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->size(), kMaxBytes);
}

struct Breach {
  const char* name;
  const char* source;  // prints nothing: the value is only built
  const char* message_has;
  bool fits_default_limits;  // renders under the default caps
};

constexpr const char* kBytes = "more than 1000 bytes";
constexpr const char* kItems = "more than 100 items";

const Breach kBreaches[] = {
    {"Repeat", "{% set s = 'x' * 1001 %}", kBytes, true},
    {"Concatenate", "{% set s = 'x' * 600 %}{% set t = s + s %}", kBytes, true},
    {"Tilde", "{% set s = 'x' * 600 %}{% set t = s ~ s %}", kBytes, true},
    {"GrownInALoop",
     "{% set ns = namespace(s='') %}{% for i in range(200) %}{% set ns.s = ns.s + '0123456789' %}{% endfor %}",
     kBytes, true},
    {"SetBlock", "{% set t %}{% for i in range(2000) %}x{% endfor %}{% endset %}", kBytes, true},
    {"MacroResult", "{% macro m() %}{% for i in range(2000) %}x{% endfor %}{% endmacro %}{% set t = m() %}",
     kBytes, true},
    {"Join", "{% set t = ['x' * 600, 'x' * 600]|join %}", kBytes, true},
    {"JoinMethod", "{% set t = ''.join(['x' * 600, 'x' * 600]) %}", kBytes, true},
    {"Replace", "{% set t = ('x' * 600).replace('x', 'yy') %}", kBytes, true},
    {"ReplaceFilter", "{% set t = ('x' * 600)|replace('x', 'yy') %}", kBytes, true},
    {"ReplaceEmpty", "{% set t = ('x' * 600).replace('', 'y') %}", kBytes, true},
    {"ListRepr", "{% set t = (['x' * 600] * 2)|string %}", kBytes, true},
    {"Tojson", "{% set t = {'a': 'x' * 600, 'b': 'x' * 600}|tojson %}", kBytes, true},
    {"TojsonIndent", "{% set t = {'k': [1, 2]}|tojson(indent=1000) %}", kBytes, true},
    {"Percent", "{% set t = '%s%s' % ('x' * 600, 'x' * 600) %}", kBytes, true},
    {"Center", "{% set t = 'x'|center(2000) %}", kBytes, true},
    {"Ljust", "{% set t = 'x'.ljust(2000) %}", kBytes, true},
    {"Indent", "{% set t = 'x'|indent(2000, true) %}", kBytes, true},
    {"IndentLines", "{% set t = ('xxxxxxxxx\\n' * 60)|indent(20) %}", kBytes, true},
    {"Escape", "{% set t = ('<' * 300)|e %}", kBytes, true},  // each '<' becomes '&lt;'
    {"RepeatOverflow", "{% set t = 'abcd' * 4611686018427387904 %}", kBytes, false},
    {"ListRepeat", "{% set t = [1] * 101 %}", kItems, true},
    {"ListRepeatOverflow", "{% set t = [1, 2] * 9223372036854775807 %}", kItems, false},
    {"ListGrownInALoop",
     "{% set ns = namespace(l=[]) %}{% for i in range(200) %}{% set ns.l = ns.l + [i] %}{% endfor %}", kItems,
     true},
    {"Split", "{% set t = ('a,' * 200).split(',') %}", kItems, true},
    {"Splitlines", "{% set t = ('a\\n' * 200).splitlines() %}", kItems, true},
    {"Characters", "{% set t = ('x' * 200)|list %}", kItems, true},
    {"BatchFill", "{% set t = [1]|batch(1000, 0)|list %}", kItems, true},
    {"DictFromPairs", "{% set t = dict(range(200)|batch(2), extra=1) %}", kItems, true},
};

class SizeBreach : public ::testing::TestWithParam<Breach> {};

TEST_P(SizeBreach, StopsTheRender) {
  const Breach& b = GetParam();
  auto r = Render(b.source, SmallCaps());
  ASSERT_FALSE(r.ok()) << "rendered \"" << *r << "\"";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_NE(r.status().message().find(b.message_has), std::string::npos) << r.status();
  if (b.fits_default_limits) {
    auto fits = Render(b.source, jinja::Limits());
    EXPECT_TRUE(fits.ok()) << fits.status();
  }
}

INSTANTIATE_TEST_SUITE_P(Caps, SizeBreach, ::testing::ValuesIn(kBreaches),
                         [](const auto& info) { return std::string(info.param.name); });

// Sharing: a list holding one long string many times costs pointers, and the
// string is not copied; printing it is what the caps stop.
TEST(RenderSize, ListsOfOneLongStringAreCheap) {
  auto r = Render("{% set s = 'x' * 1000000 %}{% set l = [s] * 1000000 %}{{ l|length }}", jinja::Limits());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "1000000");
  auto printed = Render("{% set s = 'x' * 1000000 %}{{ ([s] * 1000000)|join }}", jinja::Limits());
  ASSERT_FALSE(printed.ok());
  EXPECT_EQ(printed.status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace kaon
