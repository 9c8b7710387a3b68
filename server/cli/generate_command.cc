#include "server/cli/generate_command.h"

#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/common/status.h"
#include "server/tokenizer/tokenizer.h"

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
kernels::cpu::SamplingParams ResolveSampling(const GenerateFlags& f, const GenerationDefaults& g) {
  kernels::cpu::SamplingParams s;
  s.temperature = f.temperature.value_or(g.temperature.value_or(1.0f));
  s.top_p = f.top_p.value_or(g.top_p.value_or(1.0f));
  s.top_k = f.top_k.value_or(g.top_k.value_or(0));
  s.min_p = f.min_p.value_or(g.min_p.value_or(0.0f));
  s.seed = f.seed.value_or(0);
  return s;
}

// Text of the generated ids in the context of the prompt, so that tokenizers
// whose decoders strip or merge at the start (SentencePiece) give the text a
// user sees appended to the prompt.
std::string GeneratedText(const Tokenizer& tok, const std::vector<int32_t>& prompt,
                          const std::vector<int32_t>& generated) {
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), generated.begin(), generated.end());
  const std::string full = tok.Decode(all, /*skip_special_tokens=*/true);
  const std::string prefix = tok.Decode(prompt, /*skip_special_tokens=*/true);
  if (full.compare(0, prefix.size(), prefix) == 0) return full.substr(prefix.size());
  return tok.Decode(generated, /*skip_special_tokens=*/true);
}

absl::Status Run(const GenerateFlags& flags, std::ostream& out) {
  if (flags.prompt.has_value() == flags.prompt_ids.has_value()) {
    return absl::InvalidArgumentError("give exactly one of --prompt or --prompt-ids");
  }
  KAON_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, Tokenizer::FromModelDir(flags.model_dir));
  KAON_ASSIGN_OR_RETURN(std::unique_ptr<OfflineEngine> engine, OfflineEngine::Create(flags.model_dir, flags.engine));
  const GenerationDefaults& defaults = engine->info().generation;
  if (defaults.repetition_penalty && *defaults.repetition_penalty != 1.0f) {
    std::cerr << "kaon generate: note: generation_config.json repetition_penalty is not applied yet\n";
  }

  GenerateRequest request;
  if (flags.prompt) {
    request.prompt_ids = tokenizer->Encode(*flags.prompt, /*add_special_tokens=*/true);
  } else {
    KAON_ASSIGN_OR_RETURN(request.prompt_ids, ParseIds(*flags.prompt_ids));
  }
  request.max_tokens = flags.max_tokens;
  request.ignore_eos = flags.ignore_eos;
  request.sampling = ResolveSampling(flags, defaults);
  KAON_ASSIGN_OR_RETURN(GenerateResult result, engine->Generate(request));

  const std::string text = GeneratedText(*tokenizer, request.prompt_ids, result.token_ids);
  if (flags.json) {
    nlohmann::ordered_json j;
    j["prompt_token_ids"] = request.prompt_ids;
    j["token_ids"] = result.token_ids;
    j["text"] = text;
    j["finish_reason"] = result.finish_reason;
    // Random-weight models can emit lone byte tokens: never fail on bad UTF-8.
    out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    out << text << "\n";
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
