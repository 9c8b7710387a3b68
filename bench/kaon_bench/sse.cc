#include "bench/kaon_bench/sse.h"

#include "nlohmann/json.hpp"

namespace kaon::bench {
namespace {

using Json = nlohmann::json;

// Generated text of a completions (`text`) or chat (`delta.content`, or a
// reasoning model's `delta.reasoning_content`) chunk.
std::string ChunkText(const Json& choice) {
  auto str = [](const Json& obj, const char* key) -> std::string {
    auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string text = str(choice, "text");
  auto delta = choice.find("delta");
  if (delta != choice.end() && delta->is_object()) {
    text += str(*delta, "reasoning_content");
    text += str(*delta, "reasoning");
    text += str(*delta, "content");
  }
  return text;
}

}  // namespace

std::vector<std::string> SseParser::Feed(std::string_view bytes) {
  pending_.append(bytes);
  std::vector<std::string> events;
  while (true) {
    // An event ends at the first blank line, whichever line ending is used.
    size_t end = std::string::npos, skip = 0;
    for (size_t i = 0; i + 1 < pending_.size(); ++i) {
      if (pending_[i] != '\n') continue;
      if (pending_[i + 1] == '\n') { end = i; skip = 2; break; }
      if (pending_[i + 1] == '\r' && i + 2 < pending_.size() && pending_[i + 2] == '\n') { end = i; skip = 3; break; }
    }
    if (end == std::string::npos) break;
    std::string block = pending_.substr(0, end);
    pending_.erase(0, end + skip);
    std::string data;
    bool has_data = false;
    size_t pos = 0;
    while (pos <= block.size()) {
      size_t eol = block.find('\n', pos);
      if (eol == std::string::npos) eol = block.size();
      std::string line = block.substr(pos, eol - pos);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.rfind("data:", 0) == 0) {
        std::string v = line.substr(5);
        if (!v.empty() && v[0] == ' ') v.erase(0, 1);
        if (has_data) data += '\n';
        data += v;
        has_data = true;
      }
      pos = eol + 1;
    }
    if (has_data) events.push_back(std::move(data));
  }
  return events;
}

bool StreamAccumulator::OnEvent(const std::string& data, double t) {
  if (done_) return false;
  if (data == "[DONE]") {
    done_ = true;
    return false;
  }
  Json j = Json::parse(data, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return true;  // not ours to judge; keep reading
  if (auto e = j.find("error"); e != j.end() && !e->is_null()) {
    failed_ = true;
    done_ = true;
    out_->error = "error event: " + (e->is_object() && e->contains("message") && (*e)["message"].is_string()
                                         ? (*e)["message"].get<std::string>()
                                         : e->dump());
    return false;
  }
  if (auto c = j.find("choices"); c != j.end() && c->is_array() && !c->empty()) {
    const std::string text = ChunkText((*c)[0]);
    if (!text.empty()) {
      const double since_start = t - out_->start_s;
      if (out_->content_chunks == 0) {
        out_->ttft_s = since_start;
      } else {
        out_->itl_s.push_back(t - last_content_t_);
      }
      last_content_t_ = t;
      ++out_->content_chunks;
      out_->generated_text += text;
    }
  }
  if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
    if (auto p = u->find("prompt_tokens"); p != u->end() && p->is_number_integer()) out_->prompt_tokens = p->get<int64_t>();
    if (auto o = u->find("completion_tokens"); o != u->end() && o->is_number_integer()) {
      out_->output_tokens = o->get<int64_t>();
      out_->usage_reported = true;
    }
  }
  return true;
}

void StreamAccumulator::Finish(double t) {
  out_->latency_s = t - out_->start_s;
  if (failed_) return;
  if (out_->content_chunks == 0) {
    // An empty completion (immediate EOS) is a success if the stream ended
    // properly; its TTFT is then the whole latency.
    if (!done_) {
      out_->error = "stream ended without generated text or [DONE]";
      return;
    }
    out_->ttft_s = out_->latency_s;
  }
  // Without usage, fall back to one token per content chunk (and say so in
  // the report via usage_reported).
  if (!out_->usage_reported) out_->output_tokens = out_->content_chunks;
  out_->success = true;
}

}  // namespace kaon::bench
