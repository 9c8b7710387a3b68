// What a front end (HTTP or gRPC) serves once the model has loaded: the
// engine, what request parsing needs, and where to record metrics. Borrowed
// pointers; the serve command owns them and keeps them alive until every
// front end has stopped.
#pragma once

#include "server/api/serving_context.h"

namespace kaon {
class Engine;
}
namespace kaon::metrics {
class ServingMetrics;
}

namespace kaon::api {

struct ServingBackend {
  Engine* engine = nullptr;
  ServingContext ctx;
  metrics::ServingMetrics* metrics = nullptr;
};

}  // namespace kaon::api
