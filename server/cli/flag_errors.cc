#include "server/cli/flag_errors.h"

#include <algorithm>
#include <ostream>

namespace kaon {
namespace {

// The chain of apps being parsed: the root, then each selected subcommand.
std::vector<const CLI::App*> ParsedChain(const CLI::App& root) {
  std::vector<const CLI::App*> chain{&root};
  for (;;) {
    const std::vector<CLI::App*> subs = chain.back()->get_subcommands();
    if (subs.empty()) return chain;
    chain.push_back(subs.front());
  }
}

bool IsFlag(const std::string& arg) { return arg.size() > 1 && arg[0] == '-'; }

std::string Join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::vector<std::string> LongFlags(const CLI::App& app) {
  std::vector<std::string> flags;
  for (const CLI::Option* o : app.get_options()) {
    for (const std::string& n : o->get_lnames()) flags.push_back("--" + n);
  }
  return flags;
}

std::vector<std::string> CommandNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    names.push_back(sub->get_name());
  }
  return names;
}

// Optimal string alignment distance: a swap of neighbours costs 1, the
// commonest typo in a long flag name.
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// Unknown arguments, in the order given (CLI11's message reverses them). A
// value right after an unknown flag is taken to be that flag's, not reported
// on its own.
std::string ExtrasMessage(const CLI::App& root) {
  const std::vector<const CLI::App*> chain = ParsedChain(root);
  const CLI::App* holder = chain.back();
  std::vector<std::string> extras;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    extras = (*it)->remaining(false);
    extras.erase(std::remove(extras.begin(), extras.end(), "--"), extras.end());
    if (!extras.empty()) {
      holder = *it;
      break;
    }
  }
  const std::vector<std::string> commands = CommandNames(root);
  if (holder == &root && chain.size() == 1 && !commands.empty() && !extras.empty() && !IsFlag(extras.front())) {
    return "unknown command " + extras.front() + " (commands: " + Join(commands, ", ") + ")";
  }
  std::vector<std::string> flags, others;
  for (size_t i = 0; i < extras.size(); ++i) {
    if (IsFlag(extras[i])) {
      flags.push_back(extras[i]);
      if (extras[i].find('=') == std::string::npos && i + 1 < extras.size() && !IsFlag(extras[i + 1])) ++i;
    } else {
      others.push_back(extras[i]);
    }
  }
  std::vector<std::string> parts;
  if (!flags.empty()) {
    std::string p = (flags.size() == 1 ? "unknown flag " : "unknown flags ") + Join(flags, " ");
    if (flags.size() == 1) {
      const std::string name = flags[0].substr(0, flags[0].find('='));
      const std::string guess = ClosestFlag(name, LongFlags(*holder));
      if (!guess.empty()) p += " (did you mean " + guess + "?)";
    }
    parts.push_back(p);
  }
  if (!others.empty()) {
    parts.push_back((others.size() == 1 ? "unexpected argument " : "unexpected arguments ") + Join(others, " "));
  }
  return parts.empty() ? "unexpected arguments" : Join(parts, "; ");
}

// CLI11: "Could not convert: --seed = abc".
std::string ConversionMessage(const CLI::App& root, const std::string& what) {
  const std::string prefix = "Could not convert: ";
  const size_t eq = what.find(" = ");
  if (what.rfind(prefix, 0) != 0 || eq == std::string::npos) return what;
  const std::string name = what.substr(prefix.size(), eq - prefix.size());
  const std::string value = what.substr(eq + 3);
  std::string kind = "a valid value";
  if (const CLI::Option* o = ParsedChain(root).back()->get_option_no_throw(name)) {
    const std::string type = o->get_type_name();
    if (type == "INT" || type == "UINT") kind = "an integer";
    if (type == "FLOAT") kind = "a number";
  }
  return name + ": \"" + value + "\" is not " + kind;
}

// CLI11: "--max-model-len: 1 required SIZE missing" (the flag came last).
std::string MissingValueMessage(const std::string& what) {
  const size_t colon = what.find(": ");
  if (colon == std::string::npos || what.find(" required ", colon) == std::string::npos ||
      what.size() < 8 || what.compare(what.size() - 8, 8, " missing") != 0) {
    return what;
  }
  return what.substr(0, colon) + ": a value is missing";
}

std::string OneLine(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace

std::string CommandName(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* a : ParsedChain(app)) names.push_back(a->get_name());
  return Join(names, " ");
}

std::string ClosestFlag(const std::string& flag, const std::vector<std::string>& candidates) {
  const size_t allowed = flag.size() <= 6 ? 1 : std::max<size_t>(2, flag.size() / 5);
  std::string best;
  size_t best_distance = allowed + 1;
  for (const std::string& c : candidates) {
    const size_t d = EditDistance(flag, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string ParseErrorMessage(const CLI::App& app, const CLI::ParseError& e) {
  // By type, not get_name(): CLI11 gives an ExtrasError the app's name.
  const std::string what = e.what();
  if (dynamic_cast<const CLI::ExtrasError*>(&e)) return ExtrasMessage(app);
  if (dynamic_cast<const CLI::ConversionError*>(&e)) return OneLine(ConversionMessage(app, what));
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e)) return OneLine(MissingValueMessage(what));
  if (dynamic_cast<const CLI::RequiredError*>(&e) && what.rfind("A subcommand", 0) == 0) {
    // `kaon frobnicate` is left over at the root as an argument.
    const std::vector<std::string> left = app.remaining(false);
    if (!left.empty() && !IsFlag(left.front())) return ExtrasMessage(app);
    return "a command is required (" + Join(CommandNames(app), ", ") + ")";
  }
  return OneLine(what);
}

int ReportParseError(const CLI::App& app, const CLI::ParseError& e, std::ostream& out, std::ostream& err) {
  if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e, out, err);
  err << CommandName(app) << ": " << ParseErrorMessage(app, e) << "\n";
  return kUsageExitCode;
}

}  // namespace kaon
