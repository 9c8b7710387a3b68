// What request parsing needs to know about the served model. Borrowed
// pointers: the server owns the tokenizer and template for its lifetime.
#pragma once

#include <cstdint>
#include <string>

#include "server/api/request_limits.h"
#include "server/loading/model_config.h"

namespace kaon {
class Tokenizer;
class ChatTemplate;
}  // namespace kaon

namespace kaon::api {

struct ServingContext {
  std::string served_model_name;
  const Tokenizer* tokenizer = nullptr;
  const ChatTemplate* chat_template = nullptr;  // null: chat requests get a 400
  int64_t max_model_len = 0;
  int64_t vocab_size = 0;
  RequestLimits limits;
  // generation_config.json's sampling defaults, under the request's fields.
  GenerationDefaults generation;
};

}  // namespace kaon::api
