// Table-driven tests of every construct, filter, test, method and error path,
// read from render_cases.json. check_cases.py verifies the same file against
// Python jinja2, so each expectation here is jinja2's own output.
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/template/chat_template.h"

namespace kaon {
namespace {

constexpr int64_t kNow = 1722000000;  // must match check_cases.py

std::vector<nlohmann::ordered_json> LoadCases() {
  // The path is compiled in: gtest_discover_tests runs this binary without CTest's environment.
  std::ifstream f(KAON_TEMPLATE_CASES);
  std::vector<nlohmann::ordered_json> cases;
  for (auto& c : nlohmann::ordered_json::parse(f)) cases.push_back(c);
  return cases;
}

class RenderCase : public ::testing::TestWithParam<nlohmann::ordered_json> {};

TEST_P(RenderCase, MatchesJinja2) {
  const auto& c = GetParam();
  const std::string name = c["name"].get<std::string>();
  auto parsed = ChatTemplate::Parse(c["template"].get<std::string>());
  absl::StatusOr<std::string> result = absl::UnknownError("not rendered");
  if (!parsed.ok()) result = parsed.status();
  if (parsed.ok()) {
    ChatTemplateInputs inputs;
    inputs.messages = nlohmann::ordered_json::array();
    inputs.extra_kwargs = c["context"];
    inputs.now_unix_seconds = kNow;
    result = (*parsed)->Render(inputs);
  }
  if (c.contains("expected")) {
    ASSERT_TRUE(result.ok()) << name << ": " << result.status();
    EXPECT_EQ(*result, c["expected"].get<std::string>()) << name;
  } else {
    ASSERT_FALSE(result.ok()) << name << " rendered " << *result;
    const std::string want = c.value("kaon_error", c["error"].get<std::string>());
    EXPECT_NE(std::string(result.status().message()).find(want), std::string::npos)
        << name << ": got \"" << result.status().message() << "\", want it to contain \"" << want << "\"";
  }
}

std::string CaseName(const ::testing::TestParamInfo<nlohmann::ordered_json>& info) {
  return info.param["name"].get<std::string>();
}

INSTANTIATE_TEST_SUITE_P(Jinja2, RenderCase, ::testing::ValuesIn(LoadCases()), CaseName);

}  // namespace
}  // namespace kaon
