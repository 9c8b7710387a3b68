// Bounds on one request, checked before any work is done on its contents, so
// that the worst body the defaults allow stays cheap to parse and validate
// (bench/request_parse_bench.cc measures it). Each breach is a 400 naming the
// field (gRPC: INVALID_ARGUMENT). The operator-facing ones are `kaon serve`
// flags (README, "Request limits"); the others are properties of the API.
#pragma once

#include <cstddef>

#include "server/common/bounded_json.h"

namespace kaon::api {

struct RequestLimits {
  // Request bodies and gRPC JSON-text fields (--max-json-depth,
  // --max-json-elements, --max-json-object-keys). The element bound is what
  // keeps a body at the size limit cheap: a value costs 40-120 ns to build
  // and free (containers most), so half a million stay well under 100 ms,
  // while a 16 MiB string alone is ~5 ms. Half a million still admits a
  // 128k-token prompt sent as token ids four times over. No request needs an
  // object of more than a few hundred keys (logit_bias has its own limit).
  JsonLimits json{/*max_depth=*/128, /*max_elements=*/500'000, /*max_object_keys=*/10'000};
  // Prompts in one /v1/completions request (--max-prompts-per-request).
  size_t max_prompts = 1024;
  // Chat messages in one request (--max-chat-messages).
  size_t max_messages = 10'000;
  // Tools offered in one chat request: OpenAI's limit (--max-tools).
  size_t max_tools = 128;
  // Stop strings: the output processor scans every one of them after each
  // token, so their number and length bound that per-token cost.
  size_t max_stop = 16;
  size_t max_stop_bytes = 1024;
  size_t max_stop_token_ids = 1024;
  // logit_bias entries: the sampler applies each one every step.
  size_t max_logit_bias = 1024;
};

}  // namespace kaon::api
