// The worst request bodies the default limits allow, parsed and validated as
// the HTTP front end does: ParseJsonBounded with RequestLimits' JSON bounds,
// then ParseCompletionRequest for bodies that get that far. Target: every
// case ≤ 100 ms of CPU (issue "No request can crash or stall the server").
// nlohmann's own DOM parse of the same text is shown for comparison where it
// finishes at all (its object insertion is quadratic in the key count).
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "server/api/completion_request.h"
#include "server/api/request_limits.h"
#include "server/common/bounded_json.h"
#include "server/tokenizer/tokenizer.h"

namespace kaon {
namespace {

constexpr size_t kBodyLimit = size_t{16} << 20;  // --max-request-bytes' default

const api::RequestLimits& Limits() {
  static const api::RequestLimits limits;
  return limits;
}

// Keys "k0", "k1", ... up to the element limit (each member is one value).
std::string ManyKeys(size_t keys) {
  std::string s = "{";
  for (size_t i = 0; i < keys; ++i) {
    if (i) s += ',';
    s += "\"k" + std::to_string(i) + "\":0";
  }
  return s + "}";
}

// The same key again and again: every key after the first is a duplicate.
std::string RepeatedKey(size_t bytes) {
  std::string s = "{";
  while (s.size() + 8 < bytes) s += "\"kk\":0,";
  return s + "\"kk\":1}";
}

// The nesting limit, over and over, up to the element limit.
std::string NestedRuns(size_t elements, int depth) {
  std::string one(static_cast<size_t>(depth), '[');
  one += std::string(static_cast<size_t>(depth), ']');
  std::string s = "[";
  for (size_t n = 1; n + static_cast<size_t>(depth) <= elements; n += static_cast<size_t>(depth)) {
    if (s.size() > 1) s += ',';
    s += one;
  }
  return s + "]";
}

// One string of escapes the lexer must decode, filling the body.
std::string EscapedString(size_t bytes) {
  std::string s = "{\"prompt\":\"";
  while (s.size() + 16 < bytes) s += "\\u00e9\\ud83d\\ude00";
  return s + "\"}";
}

// Token-id prompts filling the element limit: the largest body that passes
// JSON parsing and goes on to validation (each id checked against the vocab).
std::string TokenIdPrompts(size_t elements, size_t prompts) {
  const size_t per_prompt = elements / prompts - 1;
  std::string s = "{\"max_tokens\":1,\"prompt\":[";
  for (size_t p = 0; p < prompts; ++p) {
    if (p) s += ',';
    s += '[';
    for (size_t i = 0; i < per_prompt; ++i) s += i ? ",300" : "300";
    s += ']';
  }
  return s + "]}";
}

void ParseBounded(benchmark::State& state, const std::string& body) {
  for (auto _ : state) {
    BoundedJsonResult r = ParseJsonBounded(body, Limits().json);
    benchmark::DoNotOptimize(r.value);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.counters["body_MiB"] = static_cast<double>(body.size()) / (1 << 20);
}

void ParseNlohmann(benchmark::State& state, const std::string& body) {
  for (auto _ : state) {
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(body, nullptr, false);
    benchmark::DoNotOptimize(j);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

void BM_ObjectAtKeyLimit(benchmark::State& state) {
  static const std::string body = ManyKeys(Limits().json.max_object_keys);
  ParseBounded(state, body);
}
// Objects at the key limit, as many as the element limit allows.
void BM_ManyKeysAtElementLimit(benchmark::State& state) {
  static const std::string body = [] {
    const size_t keys = Limits().json.max_object_keys;
    const std::string one = ManyKeys(keys);
    std::string s = "[";
    for (size_t n = 1; n + keys + 1 <= Limits().json.max_elements; n += keys + 1) s += (s.size() > 1 ? "," : "") + one;
    return s + "]";
  }();
  ParseBounded(state, body);
}
// {"a":0} objects up to the element limit: an allocation per value.
void BM_SmallObjectsAtElementLimit(benchmark::State& state) {
  static const std::string body = [] {
    std::string s = "[";
    for (size_t n = 1; n + 2 <= Limits().json.max_elements; n += 2) s += s.size() > 1 ? ",{\"a\":0}" : "{\"a\":0}";
    return s + "]";
  }();
  ParseBounded(state, body);
}
void BM_ManyKeys_Nlohmann20k(benchmark::State& state) {
  // 1/50 of the keys: the full body takes minutes with a linear search per key.
  static const std::string body = ManyKeys(20'000);
  ParseNlohmann(state, body);
}
void BM_RepeatedKeyFillingBody(benchmark::State& state) {
  static const std::string body = RepeatedKey(kBodyLimit);
  ParseBounded(state, body);
}
void BM_NestedToLimitRepeated(benchmark::State& state) {
  // Depth max_depth - 1 inside the outer array: the deepest that parses.
  static const std::string body = NestedRuns(Limits().json.max_elements, Limits().json.max_depth - 1);
  ParseBounded(state, body);
}
void BM_DeepBodyRefused(benchmark::State& state) {
  // 10x the body limit of brackets: refused at depth 129, whatever follows.
  static const std::string body(10 * kBodyLimit, '[');
  ParseBounded(state, body);
}
void BM_EscapedStringFillingBody(benchmark::State& state) {
  static const std::string body = EscapedString(kBodyLimit);
  ParseBounded(state, body);
}
void BM_PlainStringFillingBody(benchmark::State& state) {
  static const std::string body = "{\"prompt\":\"" + std::string(kBodyLimit - 16, 'a') + "\"}";
  ParseBounded(state, body);
}

// Parse + validate of the largest body that reaches validation: 1024
// token-id prompts (the prompt limit) filling the element limit.
void BM_ParseAndValidateTokenIdPrompts(benchmark::State& state) {
  static const std::string body = TokenIdPrompts(Limits().json.max_elements - 8, Limits().max_prompts);
  static const std::unique_ptr<Tokenizer> tokenizer = [] {
    absl::StatusOr<std::unique_ptr<Tokenizer>> t = Tokenizer::FromModelDir(KAON_SOURCE_DIR "/models/stories260k");
    return t.ok() ? std::move(*t) : nullptr;
  }();
  if (!tokenizer) {
    state.SkipWithError("cannot load models/stories260k's tokenizer");
    return;
  }
  api::ServingContext ctx;
  ctx.served_model_name = "m";
  ctx.tokenizer = tokenizer.get();
  ctx.max_model_len = int64_t{1} << 20;
  ctx.vocab_size = tokenizer->VocabSize();
  for (auto _ : state) {
    BoundedJsonResult r = ParseJsonBounded(body, ctx.limits.json);
    if (!r.ok()) {
      state.SkipWithError(r.error->message.c_str());
      return;
    }
    api::ParseResult parsed = api::ParseCompletionRequest(r.value, ctx);
    if (!std::holds_alternative<api::ParsedRequest>(parsed)) {
      state.SkipWithError(std::get<api::ApiError>(parsed).message.c_str());
      return;
    }
    benchmark::DoNotOptimize(parsed);
  }
  state.counters["body_MiB"] = static_cast<double>(body.size()) / (1 << 20);
}

BENCHMARK(BM_ObjectAtKeyLimit)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ManyKeysAtElementLimit)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SmallObjectsAtElementLimit)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ManyKeys_Nlohmann20k)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RepeatedKeyFillingBody)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_NestedToLimitRepeated)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DeepBodyRefused)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EscapedStringFillingBody)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlainStringFillingBody)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ParseAndValidateTokenIdPrompts)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kaon

BENCHMARK_MAIN();
