// The size parser every count and byte flag shares (vLLM's forms, exact
// arithmetic, no overflow), and the CLI11 options built on it: the value a
// flag stores and the one line a bad value gets, parsed in-process.
#include "server/cli/size_flag.h"

#include <limits>
#include <sstream>

#include "gtest/gtest.h"
#include "server/cli/flag_errors.h"
#include "server/cli/flag_options.h"

namespace kaon {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

TEST(ParseSize, AcceptsVllmForms) {
  const std::pair<const char*, int64_t> cases[] = {
      {"0", 0},
      {"4096", 4096},
      {"007", 7},
      {"1k", 1000},
      {"1K", 1024},
      {"32K", 32768},
      {"32k", 32000},
      {"2m", 2000000},
      {"16M", 16 << 20},
      {"1.5M", 1572864},
      {"25.6k", 25600},  // vLLM's own example
      {"0.5K", 512},
      {"1.000k", 1000},
      {"1g", 1000000000},
      {"1G", int64_t{1} << 30},
      {"1t", 1000000000000},
      {"1T", int64_t{1} << 40},
      {" 4k ", 4000},  // vLLM strips spaces
      {"9223372036854775807", kInt64Max},
      {"8388607T", int64_t{8388607} << 40},
      {"0.0009765625K", 1},  // 2^-10 of a kibi: exact
      {"1k ", 1000},
  };
  for (const auto& [text, want] : cases) {
    const SizeParse p = ParseSize(text);
    ASSERT_TRUE(p.value.has_value()) << text << ": " << p.error;
    EXPECT_EQ(*p.value, want) << text;
    EXPECT_TRUE(p.error.empty()) << text;
  }
}

TEST(ParseSize, RefusesJunk) {
  for (const char* text : {"", " ", "k", "K", "1kk", "1KK", "1x", "4KiB", "4kb", "-1k", "-1", "+4", "1e3", "1E3",
                           "0x10", "1_000", "1,000", ".5k", "1.", "1.k", "1..5k", "k1", "1 k", "nan", "inf"}) {
    const SizeParse p = ParseSize(text);
    EXPECT_FALSE(p.value.has_value()) << "\"" << text << "\" parsed as " << p.value.value_or(-1);
    EXPECT_EQ(p.error, "is not a size (use 4096, 4k = 4000, 4K = 4096)") << text;
    EXPECT_FALSE(p.too_large) << text;
  }
}

TEST(ParseSize, FractionsMustComeOutWhole) {
  // vLLM truncates 1.2345k to 1234; a size is refused rather than rounded.
  for (const char* text : {"1.2345k", "0.1K", "1.5", "0.5", "1.0000001m"}) {
    const SizeParse p = ParseSize(text);
    EXPECT_FALSE(p.value.has_value()) << text << " parsed as " << p.value.value_or(-1);
    EXPECT_EQ(p.error, "is not a whole number") << text;
  }
  const SizeParse many = ParseSize("1.0000000000000000001T");
  EXPECT_FALSE(many.value.has_value());
  EXPECT_EQ(many.error, "has too many decimal places");
}

TEST(ParseSize, RefusesValuesPastInt64) {
  for (const char* text : {"9223372036854775808", "99999999999999999999999", "8388608T", "9223372036854775.808k",
                           "10000000000t", "9.3e18"}) {
    const SizeParse p = ParseSize(text);
    EXPECT_FALSE(p.value.has_value()) << text << " parsed as " << p.value.value_or(-1);
    if (std::string(text) == "9.3e18") {
      EXPECT_FALSE(p.too_large);
      continue;
    }
    EXPECT_TRUE(p.too_large) << text << ": " << p.error;
    EXPECT_EQ(p.error, "is too large") << text;
  }
  // Just under the limit with a fraction: exact, not rounded through a double.
  const SizeParse edge = ParseSize("9223372036854775.807k");
  ASSERT_TRUE(edge.value.has_value()) << edge.error;
  EXPECT_EQ(*edge.value, kInt64Max);
}

// Parses `args` into a fresh app with the options `add` declares; returns ""
// on success, else the one-line message ReportParseError prints.
template <typename Add>
std::string Parse(std::vector<std::string> args, Add add) {
  CLI::App app{"test", "prog"};
  add(app);
  args.insert(args.begin(), "prog");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    std::ostringstream out, err;
    const int rc = ReportParseError(app, e, out, err);
    EXPECT_EQ(rc, kUsageExitCode) << err.str();
    return err.str();
  }
  return "";
}

TEST(SizeOption, StoresParsedValuesInTheFlagsType) {
  int64_t len = 0;
  size_t bytes = 0;
  std::optional<int> count;
  EXPECT_EQ(Parse({"--len", "32K", "--bytes", "16M", "--count", "2k"},
                  [&](CLI::App& app) {
                    AddSizeOption(&app, "--len", len, "");
                    AddSizeOption(&app, "--bytes", bytes, "");
                    AddSizeOption(&app, "--count", count, "", 1);
                  }),
            "");
  EXPECT_EQ(len, 32768);
  EXPECT_EQ(bytes, size_t{16} << 20);
  EXPECT_EQ(count, 2000);
}

TEST(SizeOption, BadValuesGetOneLine) {
  int64_t len = 0;
  int count = 0;
  auto add = [&](CLI::App& app) {
    AddSizeOption(&app, "--max-model-len", len, "");
    AddSizeOption(&app, "--max-num-seqs", count, "", 1);
    AddSizeOption(&app, "--small", count, "", 1, 1024);
  };
  EXPECT_EQ(Parse({"--max-model-len", "1x"}, add),
            "prog: --max-model-len: \"1x\" is not a size (use 4096, 4k = 4000, 4K = 4096)\n");
  EXPECT_EQ(Parse({"--max-model-len", "1.5"}, add), "prog: --max-model-len: \"1.5\" is not a whole number\n");
  EXPECT_EQ(Parse({"--max-num-seqs", "0"}, add), "prog: --max-num-seqs: 0 is out of range (at least 1)\n");
  EXPECT_EQ(Parse({"--max-num-seqs", "-1"}, add), "prog: --max-num-seqs: -1 is out of range (at least 1)\n");
  // Past the flag's int: the range is the type's.
  EXPECT_EQ(Parse({"--max-num-seqs", "3G"}, add),
            "prog: --max-num-seqs: 3G (= 3221225472) is out of range [1, 2147483647]\n");
  EXPECT_EQ(Parse({"--small", "2K"}, add), "prog: --small: 2K (= 2048) is out of range [1, 1024]\n");
  EXPECT_EQ(Parse({"--max-model-len", "99999999999999999999"}, add),
            "prog: --max-model-len: 99999999999999999999 is out of range [0, 9223372036854775807]\n");
  EXPECT_EQ(Parse({"--max-model-len"}, add), "prog: --max-model-len: a value is missing\n");
  EXPECT_EQ(len, 0) << "a refused value is not stored";
}

TEST(IntegerOption, PlainDigitsInRange) {
  int port = 0;
  std::optional<int32_t> top_k;
  auto add = [&](CLI::App& app) {
    AddIntegerOption(&app, "--port", port, "", 0, 65535);
    AddIntegerOption(&app, "--top-k", top_k, "", -1, 1 << 30);
  };
  EXPECT_EQ(Parse({"--port", "8080", "--top-k", "-1"}, add), "");
  EXPECT_EQ(port, 8080);
  EXPECT_EQ(top_k, -1);
  EXPECT_EQ(Parse({"--port", "70000"}, add), "prog: --port: 70000 is out of range [0, 65535]\n");
  EXPECT_EQ(Parse({"--port", "8k"}, add), "prog: --port: \"8k\" is not an integer\n");
  EXPECT_EQ(Parse({"--top-k", "-2"}, add), "prog: --top-k: -2 is out of range [-1, 1073741824]\n");
  EXPECT_EQ(Parse({"--port", "99999999999999999999999"}, add),
            "prog: --port: 99999999999999999999999 is out of range [0, 65535]\n");
}

TEST(NumberOption, RangesAreWrittenShort) {
  double t = 0, p = 0, timeout = 0;
  auto add = [&](CLI::App& app) {
    AddNumberOption(&app, "--temperature", t, "", AtLeast(0));
    AddNumberOption(&app, "--top-p", p, "", Between(0, 1));
    AddNumberOption(&app, "--timeout", timeout, "", Above(0));
  };
  EXPECT_EQ(Parse({"--temperature", "0.7", "--top-p", "1", "--timeout", "1e3"}, add), "");
  EXPECT_DOUBLE_EQ(t, 0.7);
  EXPECT_DOUBLE_EQ(timeout, 1000);
  EXPECT_EQ(Parse({"--temperature", "-1"}, add), "prog: --temperature: -1 is out of range (at least 0)\n");
  EXPECT_EQ(Parse({"--top-p", "1.5"}, add), "prog: --top-p: 1.5 is out of range [0, 1]\n");
  EXPECT_EQ(Parse({"--timeout", "0"}, add), "prog: --timeout: 0 is out of range (above 0)\n");
  EXPECT_EQ(Parse({"--timeout", "abc"}, add), "prog: --timeout: \"abc\" is not a number\n");
  EXPECT_EQ(Parse({"--timeout", "inf"}, add), "prog: --timeout: \"inf\" is not a number\n");
}

TEST(ParseErrors, UnknownArgumentsInTheOrderGiven) {
  int64_t len = 0;
  auto add = [&](CLI::App& app) { AddSizeOption(&app, "--max-model-len", len, ""); };
  EXPECT_EQ(Parse({"--max-mdoel-len", "4k"}, add),
            "prog: unknown flag --max-mdoel-len (did you mean --max-model-len?)\n");
  EXPECT_EQ(Parse({"--alpha", "--beta", "--gamma"}, add), "prog: unknown flags --alpha --beta --gamma\n");
  EXPECT_EQ(Parse({"one", "two"}, add), "prog: unexpected arguments one two\n");
  EXPECT_EQ(Parse({"--zzz=1", "--max-model-len", "1k", "extra"}, add),
            "prog: unknown flag --zzz=1; unexpected argument extra\n");
}

TEST(ParseErrors, SubcommandsAreNamed) {
  int64_t len = 0;
  auto add = [&](CLI::App& app) {
    app.require_subcommand(1);
    CLI::App* serve = app.add_subcommand("serve", "");
    AddSizeOption(serve, "--max-model-len", len, "");
    app.add_subcommand("generate", "");
  };
  EXPECT_EQ(Parse({"serve", "--max-model-len", "1k"}, add), "");
  EXPECT_EQ(len, 1000);
  EXPECT_EQ(Parse({"serve", "--max-model-len", "4x"}, add),
            "prog serve: --max-model-len: \"4x\" is not a size (use 4096, 4k = 4000, 4K = 4096)\n");
  EXPECT_EQ(Parse({"serve", "--b", "--a"}, add), "prog serve: unknown flags --b --a\n");
  EXPECT_EQ(Parse({"frobnicate"}, add), "prog: unknown command frobnicate (commands: serve, generate)\n");
  EXPECT_EQ(Parse({}, add), "prog: a command is required (serve, generate)\n");
}

TEST(ParseErrors, HelpStillPrints) {
  CLI::App app{"test", "prog"};
  int64_t len = 0;
  AddSizeOption(&app, "--max-model-len", len, "Context length")->capture_default_str();
  const char* argv[] = {"prog", "--help"};
  try {
    app.parse(2, argv);
    FAIL() << "--help did not throw";
  } catch (const CLI::ParseError& e) {
    std::ostringstream out, err;
    EXPECT_EQ(ReportParseError(app, e, out, err), 0);
    EXPECT_NE(out.str().find("--max-model-len SIZE"), std::string::npos) << out.str();
    EXPECT_EQ(err.str(), "");
  }
}

TEST(ClosestFlag, OnlyPlausibleTypos) {
  const std::vector<std::string> flags = {"--max-model-len", "--max-num-seqs", "--port", "--seed"};
  EXPECT_EQ(ClosestFlag("--max-mdoel-len", flags), "--max-model-len");
  EXPECT_EQ(ClosestFlag("--max-num-seq", flags), "--max-num-seqs");
  EXPECT_EQ(ClosestFlag("--prot", flags), "--port");
  EXPECT_EQ(ClosestFlag("--temperature", flags), "");
  EXPECT_EQ(ClosestFlag("--x", flags), "");
}

}  // namespace
}  // namespace kaon
