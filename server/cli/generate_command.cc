#include "server/cli/generate_command.h"

#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/api/request_rules.h"
#include "server/common/status.h"

namespace kaon {
namespace {

absl::StatusOr<std::vector<int32_t>> ParseIds(const std::string& text) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(part, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("--prompt-ids: \"", std::string(part), "\" is not an integer"));
    }
    ids.push_back(id);
  }
  if (ids.empty()) return absl::InvalidArgumentError("--prompt-ids: no token ids given");
  return ids;
}

// Explicit flags win, then generation_config.json, then vLLM's defaults.
SamplingParams ResolveSampling(const GenerateFlags& f, const GenerationDefaults& g) {
  SamplingParams s;
  ApplyGenerationDefaults(g, &s);
  s.temperature = f.temperature.value_or(s.temperature);
  s.top_p = f.top_p.value_or(s.top_p);
  s.top_k = f.top_k.value_or(s.top_k);
  s.min_p = f.min_p.value_or(s.min_p);
  s.seed = f.seed;
  s.max_tokens = f.max_tokens;
  s.ignore_eos = f.ignore_eos;
  return s;
}

absl::Status Run(const GenerateFlags& flags, std::ostream& out) {
  if (flags.prompt.has_value() == flags.prompt_ids.has_value()) {
    return absl::InvalidArgumentError("give exactly one of --prompt or --prompt-ids");
  }
  KAON_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(flags.model_dir, flags.engine));
  GenerationRequest request;
  if (flags.prompt) {
    request.prompt_ids = engine->tokenizer().Encode(*flags.prompt, /*add_special_tokens=*/true);
  } else {
    KAON_ASSIGN_OR_RETURN(request.prompt_ids, ParseIds(*flags.prompt_ids));
  }
  const int64_t vocab = engine->info().config.vocab_size;
  KAON_RETURN_IF_ERROR(api::CheckGenerationDefaults(engine->info().generation, vocab, flags.model_dir));
  request.params = ResolveSampling(flags, engine->info().generation);
  // Without --max-tokens' explicit value the default (16) may not fit a long
  // prompt; the context rule's message says so.
  KAON_RETURN_IF_ERROR(api::CheckGenerationRequest(request.prompt_ids, request.params,
                                                   {vocab, engine->max_model_len()}, api::RequestLimits{}));
  const std::vector<int32_t> prompt_ids = request.prompt_ids;
  KAON_ASSIGN_OR_RETURN(std::unique_ptr<RequestHandle> handle, engine->Submit(std::move(request)));

  std::vector<int32_t> token_ids;
  std::string text;
  std::string finish_reason;
  while (std::optional<RequestOutput> ev = handle->Next()) {
    if (!ev->error.empty()) return absl::InternalError(ev->error);
    token_ids.insert(token_ids.end(), ev->token_ids.begin(), ev->token_ids.end());
    text += ev->text;
    if (!flags.json) {
      out << ev->text << std::flush;
    }
    if (ev->finished()) finish_reason = FinishReasonName(ev->finish_reason);
  }
  if (flags.json) {
    nlohmann::ordered_json j;
    j["prompt_token_ids"] = prompt_ids;
    j["token_ids"] = token_ids;
    j["text"] = text;
    j["finish_reason"] = finish_reason;
    // Random-weight models can emit lone byte tokens: never fail on bad UTF-8.
    out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    out << "\n";
  }
  return absl::OkStatus();
}

}  // namespace

int RunGenerateCommand(const GenerateFlags& flags, std::ostream& out, std::ostream& err) {
  absl::Status s = Run(flags, out);
  if (!s.ok()) {
    err << "kaon generate: " << s.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace kaon
