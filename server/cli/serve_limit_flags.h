// `kaon serve`'s request limits and the worker pool's size, in one place so
// the README's "Request limits" table and --help agree.
#pragma once

#include "CLI/CLI.hpp"
#include "server/cli/serve_command.h"

namespace kaon {

void AddServeLimitFlags(CLI::App* serve, ServeFlags* flags);

}  // namespace kaon
