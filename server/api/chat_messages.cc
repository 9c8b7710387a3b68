#include "server/api/chat_messages.h"

#include <string>
#include <variant>

#include "absl/strings/str_cat.h"
#include "server/api/field_reader.h"
#include "server/common/bounded_json.h"

namespace kaon::api {
namespace {

using Json = nlohmann::ordered_json;

bool KnownRole(const std::string& role) {
  return role == "system" || role == "user" || role == "assistant" || role == "tool" || role == "developer";
}

// A list of {"type": "text", "text": ...} parts becomes their texts joined by
// newlines, as vLLM's "string" content format does.
std::optional<std::string> FlattenContent(const Json& content, size_t index, std::string& error) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) {
    error = absl::StrCat("messages[", index, "].content must be a string or a list of content parts");
    return std::nullopt;
  }
  std::string text;
  bool first = true;
  for (const Json& part : content) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      error = absl::StrCat("messages[", index, "].content parts must be objects with a \"type\"");
      return std::nullopt;
    }
    const std::string type = part["type"].get<std::string>();
    if (type != "text") {
      error = absl::StrCat("messages[", index, "].content part type \"", type, "\" is not supported");
      return std::nullopt;
    }
    if (!part.contains("text") || !part["text"].is_string()) {
      error = absl::StrCat("messages[", index, "].content text parts need a string \"text\"");
      return std::nullopt;
    }
    if (!first) text += "\n";
    text += part["text"].get<std::string>();
    first = false;
  }
  return text;
}

}  // namespace

std::optional<ApiError> CheckMessageCount(size_t messages, const RequestLimits& limits) {
  if (messages <= limits.max_messages) return std::nullopt;
  return InvalidRequest("messages", absl::StrCat("messages holds ", messages, " messages; at most ",
                                                 limits.max_messages, " are allowed (--max-chat-messages)"));
}

std::variant<Json, ApiError> NormalizeChatMessages(const Json& messages, const RequestLimits& limits) {
  if (!messages.is_array()) return InvalidRequest("messages", "messages must be a list of messages");
  if (messages.empty()) return InvalidRequest("messages", "messages must not be empty");
  if (std::optional<ApiError> e = CheckMessageCount(messages.size(), limits)) return *e;
  Json out = Json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    if (!m.is_object()) return InvalidRequest("messages", absl::StrCat("messages[", i, "] must be an object"));
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) {
      return InvalidRequest("messages", absl::StrCat("messages[", i, "].role must be a string"));
    }
    if (!KnownRole(role->get<std::string>())) {
      return InvalidRequest("messages", absl::StrCat("messages[", i, "].role \"", Quote(role->get<std::string>()),
                                                     "\" is not one of system, user, assistant, tool, developer"));
    }
    Json copy = m;
    auto content = m.find("content");
    if (content != m.end() && !content->is_null()) {
      std::string error;
      std::optional<std::string> text = FlattenContent(*content, i, error);
      if (!text) return InvalidRequest("messages", error);
      copy["content"] = *text;
    } else if (role->get<std::string>() != "assistant") {
      // Only an assistant message that makes tool calls may omit its content.
      return InvalidRequest("messages", absl::StrCat("messages[", i, "].content is required"));
    } else {
      copy["content"] = "";
    }
    if (auto calls = copy.find("tool_calls"); calls != copy.end() && !calls->is_null()) {
      if (!calls->is_array()) {
        return InvalidRequest("messages", absl::StrCat("messages[", i, "].tool_calls must be a list"));
      }
      for (Json& call : *calls) {
        if (!call.is_object()) continue;
        auto fn = call.find("function");
        if (fn == call.end() || !fn->is_object()) continue;
        auto args = fn->find("arguments");
        if (args == fn->end() || !args->is_string()) continue;
        BoundedJsonResult parsed = ParseJsonBounded(args->get<std::string>(), limits.json);
        if (!parsed.ok()) {
          return InvalidRequest("messages", absl::StrCat("messages[", i, "].tool_calls: function.arguments is not ",
                                                         parsed.error->kind == JsonParseFailure::kSyntax
                                                             ? "valid JSON: "
                                                             : "acceptable JSON: ",
                                                         parsed.error->message));
        }
        *args = std::move(parsed.value);
      }
    }
    out.push_back(std::move(copy));
  }
  return out;
}

}  // namespace kaon::api
