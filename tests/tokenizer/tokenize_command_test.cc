#include "server/cli/tokenize_command.h"

#include <gtest/gtest.h>

#include <sstream>

#include "tests/common/test_paths.h"

namespace kaon {
namespace {

TEST(TokenizeCommandTest, EncodesDecodesAndReportsBadLines) {
  std::istringstream in(
      "{\"text\": \"Once upon a time\"}\n"
      "{\"text\": \"Once\", \"add_special_tokens\": false}\n"
      "not json\n"
      "{\"ids\": [1, 403, 407], \"skip_special_tokens\": true}\n"
      "{\"ids\": [1, 403]}\n"
      "{\"ids\": \"x\"}\n"
      "{\"other\": 1}\n");
  std::ostringstream out, err;
  EXPECT_EQ(RunTokenizeCommand(testing::BundledModelDir(), in, out, err), 0);
  std::istringstream lines(out.str());
  std::vector<std::string> got;
  for (std::string l; std::getline(lines, l);) got.push_back(l);
  ASSERT_EQ(got.size(), 7u) << out.str();
  EXPECT_EQ(got[0], "{\"ids\":[1,403,407,261,378]}");
  EXPECT_EQ(got[1], "{\"ids\":[403]}");
  EXPECT_NE(got[2].find("\"error\""), std::string::npos);
  EXPECT_EQ(got[3], "{\"text\":\"Once upon\"}");
  EXPECT_EQ(got[4], "{\"text\":\"<s> Once\"}");
  EXPECT_NE(got[5].find("\"error\""), std::string::npos);
  EXPECT_NE(got[6].find("\"error\""), std::string::npos);
  EXPECT_EQ(err.str(), "");
}

TEST(TokenizeCommandTest, MissingTokenizerFails) {
  std::istringstream in("{\"text\": \"x\"}\n");
  std::ostringstream out, err;
  EXPECT_NE(RunTokenizeCommand("/nonexistent/model", in, out, err), 0);
  EXPECT_NE(err.str().find("/nonexistent/model/tokenizer.json"), std::string::npos);
  EXPECT_EQ(err.str().find('\n'), err.str().size() - 1);  // one line
  EXPECT_EQ(out.str(), "");
}

}  // namespace
}  // namespace kaon
