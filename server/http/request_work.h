// The heavy half of an HTTP request whose body must be parsed: parse it
// within the request limits, validate it, and either answer it (tokenize
// routes) or submit it to the engine. Kept out of the Beast translation unit
// (no sockets here), and run on the worker pool or, for small bodies, on the
// I/O thread. Thread-safe; never throws.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/api/api_error.h"
#include "server/api/parsed_request.h"
#include "server/api/serving_backend.h"
#include "server/engine/engine.h"
#include "server/metrics/request_recorder.h"

namespace kaon::http {

// The routes whose body is parsed (and the work behind it).
enum class Work { kCompletion, kChat, kTokenize, kDetokenize };

// What the heavy half of a request leaves for the I/O thread: an error, a
// finished answer (tokenize routes), or submitted generation requests.
struct Prepared {
  std::optional<api::ApiError> error;
  std::string body;  // tokenize routes: the 200 answer, already serialized
  std::optional<api::ParsedRequest> request;
  std::vector<std::unique_ptr<RequestHandle>> handles;
  std::vector<std::unique_ptr<metrics::RequestRecorder>> recorders;
};

// Prepares a request that arrived (its body fully read) at `arrival`.
// `not_serving` says why generation cannot start now, if it cannot.
Prepared PrepareRequest(Work work, const std::string& body, std::chrono::steady_clock::time_point arrival,
                        const api::ServingBackend& backend,
                        const std::function<std::optional<api::ApiError>()>& not_serving);

}  // namespace kaon::http
