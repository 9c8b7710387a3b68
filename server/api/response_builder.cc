#include "server/api/response_builder.h"

#include <chrono>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/tokenizer/tokenizer.h"

namespace kaon::api {
namespace {

using Json = nlohmann::ordered_json;

std::string RandomHex32() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrFormat("%016x%016x", rng(), rng());
}

}  // namespace

ResponseMeta ResponseMeta::Make(RequestKind kind, std::string model) {
  ResponseMeta m;
  m.id = absl::StrCat(kind == RequestKind::kChat ? "chatcmpl-" : "cmpl-", RandomHex32());
  m.created = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  m.model = std::move(model);
  return m;
}

std::string SseEvent(const Json& payload) {
  return absl::StrCat("data: ", payload.dump(-1, ' ', false, Json::error_handler_t::replace), "\n\n");
}

ResponseBuilder::ResponseBuilder(const ParsedRequest& request, const Tokenizer& tokenizer, ResponseMeta meta)
    : request_(request), tokenizer_(tokenizer), meta_(std::move(meta)) {
  choices_.resize(request.prompts.size() * static_cast<size_t>(request.params.n));
  cached_tokens_.assign(request.prompts.size(), 0);
}

Json ResponseBuilder::StopReasonJson(const Choice& c) {
  if (const int32_t* id = std::get_if<int32_t>(&c.stop_reason)) return *id;
  if (const std::string* s = std::get_if<std::string>(&c.stop_reason)) return *s;
  return nullptr;
}

Json ResponseBuilder::Envelope(const char* object) const {
  Json j = Json::object();
  j["id"] = meta_.id;
  j["object"] = object;
  j["created"] = meta_.created;
  j["model"] = meta_.model;
  return j;
}

void ResponseBuilder::AddSampled(const SampleResult& sample, Choice& c) {
  if (chat()) {
    Json entry = ChatLogprobEntry(tokenizer_, sample);
    c.chat_logprobs.push_back(entry);
    c.pending_chat_logprobs.push_back(std::move(entry));
  } else {
    c.completion_logprobs.Add(tokenizer_, sample);
    c.pending_completion_logprobs.Add(tokenizer_, sample);
  }
}

// echo: the prompt's text comes first, and with logprobs its tokens too (the
// first one unscored: nothing precedes it).
void ResponseBuilder::AddPromptEcho(size_t prompt_index, const RequestOutput& event, Choice& c) {
  const std::string& prompt_text = request_.prompt_texts.at(prompt_index);
  c.text += prompt_text;
  c.pending_text += prompt_text;
  if (!logprobs()) return;
  const std::vector<int32_t>& ids = request_.prompts.at(prompt_index);
  c.completion_logprobs.AddUnscored(tokenizer_, ids.front());
  c.pending_completion_logprobs.AddUnscored(tokenizer_, ids.front());
  for (const SampleResult& s : event.prompt_logprobs) {
    c.completion_logprobs.Add(tokenizer_, s);
    c.pending_completion_logprobs.Add(tokenizer_, s);
  }
}

Json ResponseBuilder::ChunkChoice(size_t index, Choice& c) {
  Json choice = Json::object();
  choice["index"] = index;
  if (chat()) {
    Json delta = Json::object();
    if (!c.pending_text.empty()) delta["content"] = c.pending_text;
    choice["delta"] = std::move(delta);
    if (logprobs()) {
      Json lp = Json::object();
      lp["content"] = std::move(c.pending_chat_logprobs);
      choice["logprobs"] = std::move(lp);
    } else {
      choice["logprobs"] = nullptr;
    }
    c.pending_chat_logprobs = Json::array();
  } else {
    choice["text"] = c.pending_text;
    choice["logprobs"] = logprobs() ? c.pending_completion_logprobs.ToJson() : Json(nullptr);
    c.pending_completion_logprobs = CompletionLogprobs(c.completion_logprobs.offset());
  }
  choice["finish_reason"] = c.finished ? Json(FinishReasonName(c.finish_reason)) : Json(nullptr);
  choice["stop_reason"] = StopReasonJson(c);
  c.pending_text.clear();
  return choice;
}

std::vector<std::string> ResponseBuilder::Add(size_t prompt_index, const RequestOutput& event) {
  std::vector<std::string> chunks;
  const size_t index = prompt_index * static_cast<size_t>(request_.params.n) + static_cast<size_t>(event.index);
  if (index >= choices_.size()) return chunks;  // not a choice of this request
  Choice& c = choices_[index];
  if (c.finished) return chunks;

  if (!event.error.empty()) {
    c.finished = true;
    ++num_finished_;
    if (!error_) error_ = ApiError{500, event.error, "server_error", std::nullopt, std::nullopt};
    if (request_.stream) chunks.push_back(SseEvent(error_->ToJson()));
    return chunks;
  }

  if (!c.started) {
    c.started = true;
    if (request_.echo && !chat()) AddPromptEcho(prompt_index, event, c);
    if (request_.stream && chat()) {
      // The role comes alone in the first chunk, as OpenAI streams it.
      Json chunk = Envelope("chat.completion.chunk");
      chunk["system_fingerprint"] = meta_.system_fingerprint ? Json(*meta_.system_fingerprint) : Json(nullptr);
      Json choice = Json::object();
      choice["index"] = index;
      choice["delta"] = Json{{"role", "assistant"}};
      choice["logprobs"] = nullptr;
      choice["finish_reason"] = nullptr;
      choice["stop_reason"] = nullptr;
      chunk["choices"] = Json::array({std::move(choice)});
      if (request_.include_usage) chunk["usage"] = nullptr;
      chunks.push_back(SseEvent(chunk));
    }
  }
  if (logprobs()) {
    for (const SampleResult& s : event.logprobs) AddSampled(s, c);
  }
  c.text += event.text;
  c.pending_text += event.text;
  c.num_tokens += static_cast<int64_t>(event.token_ids.size());
  if (event.finished()) {
    c.finished = true;
    ++num_finished_;
    c.finish_reason = event.finish_reason;
    c.stop_reason = event.stop_reason;
    if (event.usage && prompt_index < cached_tokens_.size()) cached_tokens_[prompt_index] = event.usage->cached_tokens;
  }
  if (request_.stream && (!c.pending_text.empty() || c.finished)) {
    Json chunk = Envelope(chat() ? "chat.completion.chunk" : "text_completion");
    chunk["system_fingerprint"] = meta_.system_fingerprint ? Json(*meta_.system_fingerprint) : Json(nullptr);
    chunk["choices"] = Json::array({ChunkChoice(index, c)});
    if (request_.include_usage) chunk["usage"] = nullptr;
    chunks.push_back(SseEvent(chunk));
  }
  return chunks;
}

Json ResponseBuilder::UsageJson() const {
  int64_t prompt = 0;
  for (const std::vector<int32_t>& ids : request_.prompts) prompt += static_cast<int64_t>(ids.size());
  int64_t completion = 0;
  for (const Choice& c : choices_) completion += c.num_tokens;
  int64_t cached = 0;
  for (int64_t n : cached_tokens_) cached += n;
  Json u = Json::object();
  u["prompt_tokens"] = prompt;
  u["completion_tokens"] = completion;
  u["total_tokens"] = prompt + completion;
  u["prompt_tokens_details"] = Json{{"cached_tokens", cached}};
  return u;
}

std::vector<std::string> ResponseBuilder::FinishStream() const {
  std::vector<std::string> out;
  if (request_.include_usage) {
    Json chunk = Envelope(chat() ? "chat.completion.chunk" : "text_completion");
    chunk["system_fingerprint"] = meta_.system_fingerprint ? Json(*meta_.system_fingerprint) : Json(nullptr);
    chunk["choices"] = Json::array();
    chunk["usage"] = UsageJson();
    out.push_back(SseEvent(chunk));
  }
  out.push_back(kSseDone);
  return out;
}

Json ResponseBuilder::Response() const {
  Json j = Envelope(chat() ? "chat.completion" : "text_completion");
  Json choices = Json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    Json choice = Json::object();
    choice["index"] = i;
    if (chat()) {
      Json message = Json::object();
      message["role"] = "assistant";
      message["content"] = c.text;
      choice["message"] = std::move(message);
      if (logprobs()) {
        Json lp = Json::object();
        lp["content"] = c.chat_logprobs;
        choice["logprobs"] = std::move(lp);
      } else {
        choice["logprobs"] = nullptr;
      }
    } else {
      choice["text"] = c.text;
      choice["logprobs"] = logprobs() ? c.completion_logprobs.ToJson() : Json(nullptr);
    }
    choice["finish_reason"] = c.finished ? Json(FinishReasonName(c.finish_reason)) : Json(nullptr);
    choice["stop_reason"] = StopReasonJson(c);
    choices.push_back(std::move(choice));
  }
  j["choices"] = std::move(choices);
  j["usage"] = UsageJson();
  j["system_fingerprint"] = meta_.system_fingerprint ? Json(*meta_.system_fingerprint) : Json(nullptr);
  return j;
}

}  // namespace kaon::api
