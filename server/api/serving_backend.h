// What a front end (HTTP or gRPC) serves once the model has loaded: the
// engine, what request parsing needs, and where to record metrics. Borrowed
// pointers; the serve command owns them and keeps them alive until every
// front end has stopped.
#pragma once

#include <cstddef>

#include "server/api/serving_context.h"

namespace kaon {
class Engine;
class MemoryTrimmer;
}
namespace kaon::metrics {
class ServingMetrics;
}

namespace kaon::api {

struct ServingBackend {
  Engine* engine = nullptr;
  ServingContext ctx;
  metrics::ServingMetrics* metrics = nullptr;
  // Told when a large request's parsing is done (null: nothing is trimmed).
  MemoryTrimmer* trimmer = nullptr;
};

// Requests at least this large leave enough freed memory behind to be
// worth returning to the system.
inline constexpr size_t kLargeRequestBytes = size_t{1} << 20;

}  // namespace kaon::api
