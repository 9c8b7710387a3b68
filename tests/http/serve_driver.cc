// Test-only stand-in for `kaon serve MODEL --port PORT`, used by the HTTP
// tests when the kaon binary does not serve (yet).
#include <cstdlib>
#include <iostream>

#include "server/cli/serve_command.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: kaon_http_serve_driver MODEL_DIR [PORT [CHAT_TEMPLATE_FILE]]\n";
    return 2;
  }
  kaon::ServeFlags flags;
  flags.model_dir = argv[1];
  flags.port = argc > 2 ? std::atoi(argv[2]) : 0;
  if (argc > 3) flags.chat_template_file = argv[3];
  flags.engine.options.num_threads = 2;
  return kaon::RunServeCommand(flags, std::cout, std::cerr);
}
