// Shared fixtures for the API layer tests: the bundled model's tokenizer and
// helpers to unpack a ParseResult.
#pragma once

#include <memory>
#include <variant>

#include "gtest/gtest.h"
#include "server/api/parsed_request.h"
#include "server/api/serving_context.h"
#include "server/tokenizer/tokenizer.h"
#include "tests/common/test_paths.h"

namespace kaon::api::testing {

inline const Tokenizer& StoriesTokenizer() {
  static const Tokenizer* tok = [] {
    auto t = Tokenizer::FromModelDir(kaon::testing::BundledModelDir());
    if (!t.ok()) {
      ADD_FAILURE() << "cannot load the bundled model's tokenizer: " << t.status();
      std::abort();
    }
    return t->release();
  }();
  return *tok;
}

inline ServingContext StoriesContext(int64_t max_model_len = 256) {
  ServingContext ctx;
  ctx.served_model_name = "stories260k";
  ctx.tokenizer = &StoriesTokenizer();
  ctx.max_model_len = max_model_len;
  ctx.vocab_size = 512;
  return ctx;
}

// By value: callers pass temporaries.
inline ApiError ErrorOf(const ParseResult& r) {
  const ApiError* e = std::get_if<ApiError>(&r);
  EXPECT_NE(e, nullptr) << "expected an error";
  return e ? *e : ApiError{0, "parse succeeded", "", std::nullopt, std::nullopt};
}

inline ParsedRequest RequestOf(const ParseResult& r) {
  if (const ApiError* e = std::get_if<ApiError>(&r)) {
    ADD_FAILURE() << "unexpected error " << e->http_status << " (" << e->param.value_or("") << "): " << e->message;
    return ParsedRequest{};
  }
  return std::get<ParsedRequest>(r);
}

}  // namespace kaon::api::testing
