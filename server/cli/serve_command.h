// `kaon serve`: loads the engine and the chat template and serves the
// OpenAI-compatible HTTP API until SIGINT/SIGTERM.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "server/engine/engine.h"

namespace kaon {

struct ServeFlags {
  std::string model_dir;
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: pick a free port (the announcement line carries the real one)
  std::string served_model_name;  // empty: the model directory's base name
  std::optional<std::string> chat_template_file;
  EngineConfig engine;
};

// Prints "kaon: serving MODEL as NAME on http://HOST:PORT" to `out` once
// listening; returns the exit code (0 after a signal, 1 on a start-up error,
// reported to `err` as one line).
int RunServeCommand(const ServeFlags& flags, std::ostream& out, std::ostream& err);

}  // namespace kaon
