// Writes the hand-made seeds of corpus/grpc_request: kaon.v1 requests
// serialised with the real protobuf library, each prefixed by the byte that
// grpc_request_fuzz.cc reads to pick the message (0: GenerateRequest,
// 1: TokenizeRequest). Reproducible: the same files on every run.
//
//   build/bin/kaon_fuzz_grpc_seeds tests/fuzz/corpus/grpc_request
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "kaon/v1/kaon.pb.h"

namespace {

std::string g_dir;

void Write(const std::string& name, char kind, const google::protobuf::Message& m) {
  const std::string path = g_dir + "/seed-" + name;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.put(kind);
  f << m.SerializeAsString();
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

void AddChat(kaon::v1::ChatInput* chat, bool tools) {
  auto* sys = chat->add_messages();
  sys->set_role("system");
  sys->set_content("You are a storyteller.");
  auto* user = chat->add_messages();
  user->set_role("user");
  user->set_content("Once upon a time");
  if (!tools) return;
  chat->add_tools(R"({"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",)"
                  R"( "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})");
  auto* assistant = chat->add_messages();
  assistant->set_role("assistant");  // no content: null, as with tool calls
  auto* call = assistant->add_tool_calls();
  call->set_id("call_1");
  call->mutable_function()->set_name("get_weather");
  call->mutable_function()->set_arguments(R"({"city": "Paris"})");
  auto* tool = chat->add_messages();
  tool->set_role("tool");
  tool->set_tool_call_id("call_1");
  tool->set_name("get_weather");
  tool->set_content("sunny");
  chat->set_tool_choice("auto");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];

  kaon::v1::GenerateRequest text;
  text.set_model("stories260k");
  text.set_text("Once upon a time");
  text.set_max_tokens(16);
  Write("generate-text", 0, text);

  // Every sampling and stopping field at once.
  kaon::v1::GenerateRequest full = text;
  full.set_temperature(0.7f);
  full.set_top_p(0.9f);
  full.set_top_k(40);
  full.set_min_p(0.05f);
  full.set_presence_penalty(0.5f);
  full.set_frequency_penalty(0.25f);
  full.set_repetition_penalty(1.1f);
  (*full.mutable_logit_bias())[13] = -100.0f;
  (*full.mutable_logit_bias())[42] = 2.5f;
  full.set_seed(1234);
  full.set_n(2);
  full.set_min_tokens(1);
  full.add_stop("\n\n");
  full.add_stop("The end");
  full.add_stop_token_ids(2);
  full.set_ignore_eos(false);
  full.set_include_stop_str_in_output(true);
  full.set_logprobs(5);
  full.set_skip_special_tokens(false);
  full.set_priority(-3);
  Write("generate-text-all-fields", 0, full);

  kaon::v1::GenerateRequest ids;
  for (int id : {1, 403, 407, 261, 378, 316}) ids.mutable_token_ids()->add_ids(id);
  ids.set_max_tokens(8);
  ids.set_logprobs(2);
  Write("generate-token-ids", 0, ids);

  kaon::v1::GenerateRequest bad_ids = ids;
  bad_ids.mutable_token_ids()->add_ids(512);  // just past the vocabulary
  bad_ids.mutable_token_ids()->add_ids(-1);
  Write("generate-token-ids-out-of-range", 0, bad_ids);

  kaon::v1::GenerateRequest chat;
  AddChat(chat.mutable_chat(), /*tools=*/false);
  chat.mutable_chat()->set_add_generation_prompt(true);
  chat.set_max_tokens(32);
  Write("generate-chat", 0, chat);

  kaon::v1::GenerateRequest chat_tools;
  AddChat(chat_tools.mutable_chat(), /*tools=*/true);
  chat_tools.mutable_chat()->set_chat_template_kwargs(R"({"tools_in_user_message": false, "date_string": "26 Jul 2024"})");
  Write("generate-chat-tools", 0, chat_tools);

  kaon::v1::GenerateRequest chat_continue;
  AddChat(chat_continue.mutable_chat(), /*tools=*/false);
  auto* partial = chat_continue.mutable_chat()->add_messages();
  partial->set_role("assistant");
  partial->set_content("There was a");
  chat_continue.mutable_chat()->set_add_generation_prompt(false);
  chat_continue.mutable_chat()->set_continue_final_message(true);
  Write("generate-chat-continue", 0, chat_continue);

  kaon::v1::GenerateRequest bad_json;
  AddChat(bad_json.mutable_chat(), /*tools=*/false);
  bad_json.mutable_chat()->add_tools("[[[[");
  bad_json.mutable_chat()->set_chat_template_kwargs("{\"a\": ");
  Write("generate-chat-bad-json", 0, bad_json);

  kaon::v1::GenerateRequest wrong_model = text;
  wrong_model.set_model("gpt-4");
  Write("generate-wrong-model", 0, wrong_model);

  Write("generate-empty", 0, kaon::v1::GenerateRequest());

  kaon::v1::TokenizeRequest tok_text;
  tok_text.set_model("stories260k");
  tok_text.set_text("Once upon a time <s> there was");
  tok_text.set_add_special_tokens(true);
  tok_text.set_return_token_strs(true);
  Write("tokenize-text", 1, tok_text);

  kaon::v1::TokenizeRequest tok_chat;
  AddChat(tok_chat.mutable_chat(), /*tools=*/true);
  tok_chat.set_add_special_tokens(false);
  Write("tokenize-chat", 1, tok_chat);

  Write("tokenize-empty", 1, kaon::v1::TokenizeRequest());
  return 0;
}
