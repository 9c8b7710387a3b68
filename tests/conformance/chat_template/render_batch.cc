// Test driver: renders a JSONL batch of chat-template cases with kaon's
// interpreter, one result line per case, so the conformance harness pays for one
// process instead of one per conversation.
//   input line:  {"template": PATH | "source": TEXT, "special_tokens": {...}, "messages": [...], "tools": ...,
//                 "documents": ..., "add_generation_prompt": bool, "kwargs": {...}, "now": SECONDS}
//   output line: {"ok": true, "output": "..."} or {"ok": false, "error": "..."}
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "nlohmann/json.hpp"
#include "server/common/files.h"
#include "server/template/chat_template.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: kaon_chat_template_batch CASES.jsonl\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << "cannot open " << argv[1] << "\n";
    return 2;
  }
  std::map<std::string, std::unique_ptr<kaon::ChatTemplate>> cache;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto c = nlohmann::ordered_json::parse(line);
    nlohmann::ordered_json result;
    const bool inline_source = c.contains("source");
    const std::string key = inline_source ? "source:" + c["source"].get<std::string>() : c["template"].get<std::string>();
    auto it = cache.find(key);
    std::string parse_error;
    if (it == cache.end()) {
      absl::StatusOr<std::string> source = inline_source ? c["source"].get<std::string>()
                                                         : kaon::ReadFileToString(c["template"].get<std::string>());
      if (!source.ok()) {
        std::cerr << source.status() << "\n";
        return 2;
      }
      auto parsed = kaon::ChatTemplate::Parse(*source);
      if (!parsed.ok()) {
        parse_error = std::string(parsed.status().message());
      } else {
        it = cache.emplace(key, std::move(*parsed)).first;
      }
    }
    if (!parse_error.empty()) {
      result["ok"] = false;
      result["error"] = parse_error;
    } else {
      kaon::ChatTemplate& t = *it->second;
      std::map<std::string, std::string> tokens;
      const nlohmann::ordered_json special =
          c.contains("special_tokens") ? c["special_tokens"] : nlohmann::ordered_json::object();
      for (const auto& [k, v] : special.items()) tokens[k] = v.get<std::string>();
      t.SetSpecialTokens(tokens);
      kaon::ChatTemplateInputs inputs;
      inputs.messages = c.value("messages", nlohmann::ordered_json::array());
      inputs.tools = c.value("tools", nlohmann::ordered_json());
      inputs.documents = c.value("documents", nlohmann::ordered_json());
      inputs.add_generation_prompt = c.value("add_generation_prompt", false);
      if (c.contains("kwargs")) inputs.extra_kwargs = c["kwargs"];
      if (c.contains("now")) inputs.now_unix_seconds = c["now"].get<int64_t>();
      auto r = t.Render(inputs);
      result["ok"] = r.ok();
      if (r.ok()) result["output"] = *r;
      else result["error"] = std::string(r.status().message());
    }
    std::cout << result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  return 0;
}
