// `kaon chat-template MODEL_DIR [--chat-template FILE]`: renders the model's chat
// template for one request read from stdin, for scripts and conformance tests.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

namespace kaon {

// Reads one JSON object from `in`:
//   {"messages": [...], "tools": [...], "documents": [...], "add_generation_prompt": true,
//    "chat_template_kwargs": {...}, ...any other key is passed to the template too}
// and writes the rendered prompt to `out` byte for byte (no newline added).
// Errors (no template, parse error, raise_exception, bad input) -> one line on
// `err` and a non-zero return. KAON_CHAT_TEMPLATE_NOW (seconds since the epoch)
// fixes strftime_now()'s clock, in UTC, for reproducible output.
int RunChatTemplateCommand(const std::string& model_dir, const std::optional<std::string>& template_file,
                           std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace kaon
