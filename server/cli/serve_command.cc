#include "server/cli/serve_command.h"

#include <filesystem>
#include <memory>
#include <ostream>

#include "server/api/serving_context.h"
#include "server/http/http_server.h"
#include "server/template/chat_template.h"

namespace kaon {

namespace {

// "models/stories260k/" and "models/stories260k" both name "stories260k".
std::string BaseName(const std::string& dir) {
  std::filesystem::path p(dir);
  if (!p.has_filename()) p = p.parent_path();
  return p.filename().string();
}

}  // namespace

int RunServeCommand(const ServeFlags& flags, std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(flags.model_dir, flags.engine);
  if (!engine.ok()) {
    err << "kaon serve: " << engine.status().message() << "\n";
    return 1;
  }

  // A model without a template still serves completions; chat requests then
  // get a 400 naming --chat-template. An explicit file must load, though.
  std::unique_ptr<ChatTemplate> chat_template;
  absl::StatusOr<std::unique_ptr<ChatTemplate>> loaded = ChatTemplate::FromModelDir(flags.model_dir, flags.chat_template_file);
  if (loaded.ok()) {
    chat_template = std::move(*loaded);
  } else if (flags.chat_template_file.has_value() || !absl::IsNotFound(loaded.status())) {
    err << "kaon serve: " << loaded.status().message() << "\n";
    return 1;
  }

  api::ServingContext ctx;
  ctx.served_model_name = flags.served_model_name.empty() ? BaseName(flags.model_dir) : flags.served_model_name;
  ctx.tokenizer = &(*engine)->tokenizer();
  ctx.chat_template = chat_template.get();
  ctx.max_model_len = (*engine)->max_model_len();
  ctx.vocab_size = (*engine)->info().config.vocab_size;

  http::ServerOptions options;
  options.host = flags.host;
  options.port = flags.port;
  absl::StatusOr<std::unique_ptr<http::HttpServer>> server = http::HttpServer::Create(engine->get(), ctx, options);
  if (!server.ok()) {
    err << "kaon serve: " << server.status().message() << "\n";
    return 1;
  }
  (*server)->HandleSignals();
  out << "kaon: serving " << flags.model_dir << " as " << ctx.served_model_name << " on http://" << flags.host << ":"
      << (*server)->port() << std::endl;
  (*server)->Run();
  // The server goes first: its connections hold engine request handles.
  server->reset();
  return 0;
}

}  // namespace kaon
