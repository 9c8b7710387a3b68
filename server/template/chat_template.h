// Chat templates: renders a model's Hugging Face chat template (Jinja) into the
// prompt string, byte for byte as transformers does, with kaon's own sandboxed
// interpreter (server/template/*.h) instead of Python jinja2.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kaon {

namespace jinja {
struct Limits;
}

struct ChatTemplateInputs {
  nlohmann::ordered_json messages;             // array
  nlohmann::ordered_json tools;                // array or null
  nlohmann::ordered_json documents;            // array or null
  bool add_generation_prompt = false;
  nlohmann::ordered_json extra_kwargs = nlohmann::ordered_json::object();  // chat_template_kwargs, e.g. enable_thinking
  // Clock for strftime_now(), in seconds since the epoch (read as UTC); unset: the
  // real clock in local time. Tests fix it so output is reproducible.
  std::optional<int64_t> now_unix_seconds;
};

class ChatTemplate {
 public:
  ~ChatTemplate();

  // Parse errors carry line and column ("chat template: line 3, column 14: unexpected '}'").
  static absl::StatusOr<std::unique_ptr<ChatTemplate>> Parse(const std::string& source);

  // Loads MODEL_DIR/chat_template.jinja if present, else tokenizer_config.json's
  // "chat_template" (a string, or a list of {name, template}: "default" is used),
  // or override_file when given. NotFound, naming --chat-template, when the model
  // has none. Special tokens come from tokenizer_config.json.
  static absl::StatusOr<std::unique_ptr<ChatTemplate>> FromModelDir(
      const std::string& dir, const std::optional<std::string>& override_file = std::nullopt);

  // Renders as transformers does. raise_exception() -> InvalidArgument with the
  // template's message verbatim; other template errors -> InvalidArgument
  // "chat template: line N: ..."; sandbox limits (jinja::Limits: the wall-time
  // budget, the size of every string and list/dict built, loop iterations,
  // recursion; and values nested too deep, inputs included) -> ResourceExhausted,
  // "chat template: line N: ..." ("chat template: ..." for the inputs), except the
  // time budget's "chat template: rendering exceeded the 1000 ms budget
  // (--max-chat-template-render-ms)"; an interpreter bug -> Internal. No input
  // crashes it or keeps it running much past the budget. Const and safe to call
  // from several threads at once.
  absl::StatusOr<std::string> Render(const ChatTemplateInputs& inputs) const;

  // Configuration below is not synchronised with Render: set it up before sharing.
  // Variables such as bos_token / eos_token passed to every render (replaces the set).
  void SetSpecialTokens(std::map<std::string, std::string> tokens);
  // Reads bos/eos/unk/pad/sep/cls/mask tokens (strings or {"content": ...}) from a
  // tokenizer_config.json object.
  void SetSpecialTokensFromConfig(const nlohmann::ordered_json& tokenizer_config);
  const std::map<std::string, std::string>& special_tokens() const { return special_tokens_; }

  // Sandbox limits (server/template/limits.h); the defaults apply until then.
  void SetLimits(const jinja::Limits& limits);

  const std::string& source() const { return source_; }

 private:
  struct Impl;
  ChatTemplate();
  std::unique_ptr<Impl> impl_;
  std::string source_;
  std::map<std::string, std::string> special_tokens_;
};

}  // namespace kaon
