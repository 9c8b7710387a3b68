#include "server/cli/tokenize_command.h"

#include <istream>
#include <ostream>

#include "nlohmann/json.hpp"
#include "server/common/bounded_json.h"
#include "server/tokenizer/tokenizer.h"

namespace kaon {
namespace {

using Json = nlohmann::ordered_json;

std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Handles one request line; returns the response object.
Json HandleLine(const Tokenizer& tokenizer, const std::string& line) {
  // The same bounded parser as request bodies: no line can nest deep enough
  // to matter.
  BoundedJsonResult parsed = ParseJsonBounded(line, JsonLimits{});
  if (!parsed.ok()) return {{"error", "expected a JSON object: " + parsed.error->message}};
  Json& req = parsed.value;
  if (!req.is_object()) return {{"error", "expected a JSON object"}};
  if (req.contains("text")) {
    if (!req["text"].is_string()) return {{"error", "text: expected a string"}};
    bool add = true;
    if (req.contains("add_special_tokens")) {
      if (!req["add_special_tokens"].is_boolean()) {
        return {{"error", "add_special_tokens: expected a boolean"}};
      }
      add = req["add_special_tokens"].get<bool>();
    }
    return {{"ids", tokenizer.Encode(req["text"].get<std::string>(), add)}};
  }
  if (req.contains("ids")) {
    const Json& ids_json = req["ids"];
    if (!ids_json.is_array()) return {{"error", "ids: expected an array of integers"}};
    std::vector<int32_t> ids;
    for (const Json& id : ids_json) {
      if (!id.is_number_integer() || id.get<int64_t>() < INT32_MIN || id.get<int64_t>() > INT32_MAX) {
        return {{"error", "ids: expected an array of integers"}};
      }
      ids.push_back(id.get<int32_t>());
    }
    bool skip = false;
    if (req.contains("skip_special_tokens")) {
      if (!req["skip_special_tokens"].is_boolean()) {
        return {{"error", "skip_special_tokens: expected a boolean"}};
      }
      skip = req["skip_special_tokens"].get<bool>();
    }
    return {{"text", tokenizer.Decode(ids, skip)}};
  }
  return {{"error", "expected \"text\" or \"ids\""}};
}

}  // namespace

int RunTokenizeCommand(const std::string& model_dir, std::istream& in, std::ostream& out,
                       std::ostream& err) {
  auto tokenizer = Tokenizer::FromModelDir(model_dir);
  if (!tokenizer.ok()) {
    err << "kaon tokenize: " << tokenizer.status().message() << std::endl;
    return 1;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    out << Dump(HandleLine(**tokenizer, line)) << '\n';
    out.flush();
  }
  return 0;
}

}  // namespace kaon
