#include "server/template/chat_template.h"

#include "server/common/files.h"
#include "server/common/status.h"
#include "server/template/budget.h"
#include "server/template/interpreter.h"
#include "server/template/json_io.h"
#include "server/template/lexer.h"
#include "server/template/parser.h"

namespace kaon {

struct ChatTemplate::Impl {
  jinja::Body body;
  jinja::Limits limits;
};

ChatTemplate::ChatTemplate() : impl_(std::make_unique<Impl>()) {}
ChatTemplate::~ChatTemplate() = default;

absl::StatusOr<std::unique_ptr<ChatTemplate>> ChatTemplate::Parse(const std::string& source) {
  std::unique_ptr<ChatTemplate> t(new ChatTemplate());
  t->source_ = source;
  try {
    t->impl_->body = jinja::ParseTemplate(source);
    jinja::ValidateTemplate(t->impl_->body);
  } catch (const jinja::ParseError& e) {
    std::string where = "line " + std::to_string(e.line);
    if (e.column > 0) where += ", column " + std::to_string(e.column);
    return absl::InvalidArgumentError("chat template: " + where + ": " + e.message);
  }
  return t;
}

namespace {
std::optional<std::string> TokenString(const nlohmann::ordered_json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}
}  // namespace

void ChatTemplate::SetSpecialTokens(std::map<std::string, std::string> tokens) {
  special_tokens_ = std::move(tokens);
}

void ChatTemplate::SetSpecialTokensFromConfig(const nlohmann::ordered_json& config) {
  special_tokens_.clear();
  if (!config.is_object()) return;
  for (const char* name : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    auto it = config.find(name);
    if (it == config.end()) continue;
    if (auto s = TokenString(*it)) special_tokens_[name] = *s;
  }
}

void ChatTemplate::SetLimits(const jinja::Limits& limits) { impl_->limits = limits; }

absl::StatusOr<std::unique_ptr<ChatTemplate>> ChatTemplate::FromModelDir(
    const std::string& dir, const std::optional<std::string>& override_file) {
  std::optional<nlohmann::ordered_json> config;
  const std::string config_path = JoinPath(dir, "tokenizer_config.json");
  if (FileExists(config_path)) {
    KAON_ASSIGN_OR_RETURN(config, ReadJsonFile(config_path));
  }
  std::string source;
  if (override_file) {
    KAON_ASSIGN_OR_RETURN(source, ReadFileToString(*override_file));
  } else if (FileExists(JoinPath(dir, "chat_template.jinja"))) {
    KAON_ASSIGN_OR_RETURN(source, ReadFileToString(JoinPath(dir, "chat_template.jinja")));
  } else {
    const nlohmann::ordered_json* tmpl = nullptr;
    if (config && config->is_object() && config->contains("chat_template")) tmpl = &(*config)["chat_template"];
    if (tmpl && tmpl->is_string()) {
      source = tmpl->get<std::string>();
    } else if (tmpl && tmpl->is_array()) {
      bool found = false;
      for (const auto& entry : *tmpl) {
        // value("name", "") would throw on a non-string name; a config file
        // must get an error (or be skipped), never an exception.
        const auto name = entry.find("name");  // end() when entry is not an object
        if (entry.is_object() && name != entry.end() && name->is_string() && *name == "default" &&
            entry.contains("template") && entry["template"].is_string()) {
          source = entry["template"].get<std::string>();
          found = true;
        }
      }
      if (!found)
        return absl::NotFoundError("model at " + dir +
                                   " has several chat templates and none named \"default\"; pass one with "
                                   "--chat-template FILE");
    } else {
      return absl::NotFoundError("model at " + dir +
                                 " has no chat template (no chat_template.jinja and no \"chat_template\" in "
                                 "tokenizer_config.json); pass one with --chat-template FILE");
    }
  }
  auto parsed = Parse(source);
  if (!parsed.ok()) {
    std::string origin = override_file ? *override_file : dir;
    return absl::InvalidArgumentError(origin + ": " + std::string(parsed.status().message()));
  }
  if (config) (*parsed)->SetSpecialTokensFromConfig(*config);
  return parsed;
}

absl::StatusOr<std::string> ChatTemplate::Render(const ChatTemplateInputs& inputs) const {
  std::optional<std::time_t> now;
  if (inputs.now_unix_seconds) now = static_cast<std::time_t>(*inputs.now_unix_seconds);
  // The clock starts here: converting the inputs is part of the render.
  jinja::Budget budget(impl_->limits);
  jinja::Interpreter interp(budget, now);
  try {
    auto root = std::make_shared<jinja::Scope>();
    // Same precedence as transformers: special tokens, then kwargs, then the named inputs.
    for (const auto& [name, value] : special_tokens_) root->Set(name, jinja::Value(value));
    if (inputs.extra_kwargs.is_object())
      for (const auto& [k, v] : inputs.extra_kwargs.items()) root->Set(k, jinja::FromJson(v, budget));
    // Converted in place: a copy of the JSON would cost time, and nlohmann copies
    // deep values recursively.
    root->Set("messages", inputs.messages.is_null() ? jinja::Value::MakeList({})
                                                    : jinja::FromJson(inputs.messages, budget));
    root->Set("tools", jinja::FromJson(inputs.tools, budget));
    root->Set("documents", jinja::FromJson(inputs.documents, budget));
    root->Set("add_generation_prompt", jinja::Value(inputs.add_generation_prompt));
    return interp.Run(impl_->body, root);
  } catch (const jinja::TemplateError& e) {
    if (e.verbatim) return absl::Status(e.code, e.message);
    // Line 0: the error came from the inputs, before any statement ran.
    std::string where = interp.line() > 0 ? "line " + std::to_string(interp.line()) + ": " : "";
    return absl::Status(e.code, "chat template: " + where + e.message);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("chat template: out of memory while rendering");
  } catch (const std::exception& e) {
    // A bug in the interpreter must cost one request, not the process.
    return absl::InternalError(std::string("chat template: internal error while rendering: ") + e.what());
  }
}

}  // namespace kaon
