#include "server/cli/serve_limit_flags.h"

#include "server/cli/flag_options.h"

namespace kaon {

void AddServeLimitFlags(CLI::App* serve, ServeFlags* f) {
  api::RequestLimits& l = f->limits;
  // The parser recurses once per level: a bound keeps any setting far from
  // the stack's end.
  AddIntegerOption(serve, "--max-json-depth", l.json.max_depth,
                   "Deepest nesting of a request body or gRPC JSON-text field; deeper ones get 400", 1, 1000)
      ->capture_default_str();
  AddSizeOption(serve, "--max-json-elements", l.json.max_elements,
                "Most JSON values (numbers, strings, lists, ...) in one request body", 1)
      ->capture_default_str();
  AddSizeOption(serve, "--max-json-object-keys", l.json.max_object_keys, "Most keys in one JSON object of a request",
                1)
      ->capture_default_str();
  AddSizeOption(serve, "--max-prompts-per-request", l.max_prompts, "Most prompts in one /v1/completions request", 1)
      ->capture_default_str();
  AddSizeOption(serve, "--max-chat-messages", l.max_messages, "Most messages in one chat request", 1)
      ->capture_default_str();
  AddSizeOption(serve, "--max-tools", l.max_tools, "Most tools in one chat request", 1)->capture_default_str();
  AddSizeOption(serve, "--max-chat-template-render-ms", f->max_render_ms,
                "Wall time one chat-template render may take; longer ones get 400", 1)
      ->capture_default_str();
  AddSizeOption(serve, "--max-chat-template-output-bytes", f->max_render_bytes,
                "Largest chat-template output (and any string a render builds); larger ones get 400", 1)
      ->capture_default_str();
  AddIntegerOption(serve, "--api-worker-threads", f->api_worker_threads,
                   "Threads for heavy request work: large bodies, chat templates, tokenization (0: a quarter of "
                   "the cores, at least 2)",
                   0, 1024)
      ->capture_default_str();
  AddNumberOption(serve, "--request-body-timeout", f->request_body_timeout_s,
                  "Seconds a request's body may take to arrive once its headers have; then 408", Above(0))
      ->capture_default_str();
}

}  // namespace kaon
