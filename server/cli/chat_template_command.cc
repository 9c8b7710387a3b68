#include "server/cli/chat_template_command.h"

#include <cstdlib>
#include <iostream>
#include <iterator>

#include "nlohmann/json.hpp"
#include "server/common/bounded_json.h"
#include "server/template/chat_template.h"

namespace kaon {
namespace {

// Multi-line messages (template errors can quote text) become one line.
std::string OneLine(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

int RunChatTemplateCommand(const std::string& model_dir, const std::optional<std::string>& template_file,
                           std::istream& in, std::ostream& out, std::ostream& err) {
  auto tmpl = ChatTemplate::FromModelDir(model_dir, template_file);
  if (!tmpl.ok()) {
    err << "kaon chat-template: " << OneLine(std::string(tmpl.status().message())) << "\n";
    return 1;
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Key order matters (templates print tools and kwargs as given), and the
  // nesting is bounded as for request bodies.
  BoundedJsonResult parsed = ParseJsonBounded(text, JsonLimits{});
  if (!parsed.ok()) {
    err << "kaon chat-template: invalid JSON on stdin: " << OneLine(parsed.error->message) << "\n";
    return 1;
  }
  nlohmann::ordered_json request = std::move(parsed.value);
  if (!request.is_object() || !request.contains("messages") || !request["messages"].is_array()) {
    err << "kaon chat-template: stdin must be a JSON object with a \"messages\" array\n";
    return 1;
  }
  ChatTemplateInputs inputs;
  for (const auto& [key, value] : request.items()) {
    if (key == "messages") {
      inputs.messages = value;
    } else if (key == "tools") {
      inputs.tools = value;
    } else if (key == "documents") {
      inputs.documents = value;
    } else if (key == "add_generation_prompt") {
      inputs.add_generation_prompt = value.is_boolean() ? value.get<bool>() : !value.is_null();
    } else if (key == "chat_template_kwargs" && value.is_object()) {
      for (const auto& [k, v] : value.items()) inputs.extra_kwargs[k] = v;
    } else {
      inputs.extra_kwargs[key] = value;
    }
  }
  if (const char* now = std::getenv("KAON_CHAT_TEMPLATE_NOW"); now && *now)
    inputs.now_unix_seconds = std::strtoll(now, nullptr, 10);
  auto rendered = (*tmpl)->Render(inputs);
  if (!rendered.ok()) {
    err << OneLine(std::string(rendered.status().message())) << "\n";
    return 1;
  }
  out << *rendered;
  out.flush();
  return 0;
}

}  // namespace kaon
