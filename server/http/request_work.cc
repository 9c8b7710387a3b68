#include "server/http/request_work.h"

#include <new>
#include <variant>

#include "nlohmann/json.hpp"
#include "server/api/chat_request.h"
#include "server/api/completion_request.h"
#include "server/api/request_body.h"
#include "server/api/tokenize_request.h"

namespace kaon::http {
namespace {

using Json = nlohmann::ordered_json;

std::string DumpJson(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace

Prepared PrepareRequest(Work work, const std::string& text, std::chrono::steady_clock::time_point arrival,
                        const api::ServingBackend& backend,
                        const std::function<std::optional<api::ApiError>()>& not_serving) {
  Prepared out;
  const api::ServingContext& ctx = backend.ctx;
  try {
    std::variant<Json, api::ApiError> body = api::ParseRequestBody(text, ctx.limits);
    if (auto* e = std::get_if<api::ApiError>(&body)) {
      out.error = std::move(*e);
      return out;
    }
    const Json& j = std::get<Json>(body);
    if (work == Work::kTokenize || work == Work::kDetokenize) {
      std::variant<Json, api::ApiError> r = work == Work::kDetokenize ? api::Detokenize(j, ctx) : api::Tokenize(j, ctx);
      if (auto* e = std::get_if<api::ApiError>(&r)) out.error = std::move(*e);
      else out.body = DumpJson(std::get<Json>(r));
      return out;
    }
    api::ParseResult parsed = work == Work::kChat ? api::ParseChatRequest(j, ctx) : api::ParseCompletionRequest(j, ctx);
    if (auto* e = std::get_if<api::ApiError>(&parsed)) {
      out.error = std::move(*e);
      return out;
    }
    if (std::optional<api::ApiError> refused = not_serving()) {
      out.error = std::move(*refused);
      return out;
    }
    out.request = std::move(std::get<api::ParsedRequest>(parsed));
    const api::ParsedRequest& request = *out.request;
    std::vector<GenerationRequest> generation;
    for (size_t i = 0; i < request.prompts.size(); ++i) {
      generation.push_back(api::ToGenerationRequest(request, i));
      // Arrival is when the body had been read, so TTFT includes parsing.
      out.recorders.push_back(std::make_unique<metrics::RequestRecorder>(
          backend.metrics, static_cast<int64_t>(request.prompts[i].size()), request.params.n, arrival));
    }
    absl::StatusOr<std::vector<std::unique_ptr<RequestHandle>>> h = backend.engine->SubmitAll(std::move(generation));
    if (!h.ok()) {
      out.error = api::ApiErrorFromStatus(h.status());
      // Never started: not aborted requests.
      out.recorders.clear();
      return out;
    }
    out.handles = std::move(*h);
  } catch (const std::bad_alloc&) {
    out = Prepared();
    out.error = api::ApiError{500, "out of memory while parsing the request", "server_error", std::nullopt,
                              std::nullopt};
  } catch (const std::exception& e) {
    // A bug, not the client's fault; it must still get an answer.
    out = Prepared();
    out.error = api::ApiError{500, std::string("internal error while parsing the request: ") + e.what(),
                              "server_error", std::nullopt, std::nullopt};
  }
  return out;
}

}  // namespace kaon::http
