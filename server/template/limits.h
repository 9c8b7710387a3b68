// The sandbox limits of one chat-template render. The operator sets them
// (`kaon serve --max-chat-template-render-ms`, `--max-chat-template-output-bytes`)
// through ChatTemplate::SetLimits; the defaults are generous for real templates,
// whose renders take tens of microseconds, and stop templates that client data
// (messages, tools, documents, chat_template_kwargs) makes slow or huge.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace kaon::jinja {

struct Limits {
  // Wall time of one render, converting the inputs included. Zero or less: no limit.
  std::chrono::nanoseconds max_render_time = std::chrono::milliseconds(1000);
  // Any string a render builds: the output, a macro's or block's buffer, a
  // variable that is never printed.
  size_t max_output_bytes = 16u << 20;
  // Any list or dict a render builds (`+`, `*`, split, filters, ...).
  size_t max_container_items = 1'000'000;
  int64_t max_loop_iterations = 1'000'000;  // all loops of one render together
  int max_call_depth = 100;                 // nested macro and recursive loop() calls
};

}  // namespace kaon::jinja
