// Command-line errors as one line on stderr, `PROGRAM [COMMAND]: MESSAGE`:
// `kaon serve: --port: 70000 is out of range [0, 65535]`,
// `kaon serve: unknown flag --max-mdoel-len (did you mean --max-model-len?)`.
// CLI11's own report spans several lines and lists unknown arguments in
// reverse order; --help, --help-all and --version still print as CLI11 does.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace kaon {

// Exit code of a command-line error (as argparse, so as vLLM).
inline constexpr int kUsageExitCode = 2;

// Prints `e` for `app` (the root, after parse() threw) and returns the exit
// code: 0 for help and version, kUsageExitCode otherwise.
int ReportParseError(const CLI::App& app, const CLI::ParseError& e, std::ostream& out, std::ostream& err);

// "kaon serve": the root's name and those of the subcommands being parsed.
std::string CommandName(const CLI::App& app);

// The message without the program, for tests: `unknown flag --x`.
std::string ParseErrorMessage(const CLI::App& app, const CLI::ParseError& e);

// The closest of `candidates` to `flag` ("--max-mdoel-len" -> "--max-model-len"),
// or "" when none is a plausible typo.
std::string ClosestFlag(const std::string& flag, const std::vector<std::string>& candidates);

}  // namespace kaon
