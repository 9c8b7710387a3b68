// The kaon command: serve, generate, tokenize. Flag names follow vLLM's.
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <new>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "server/cli/chat_template_command.h"
#include "server/cli/flag_errors.h"
#include "server/cli/flag_options.h"
#include "server/cli/generate_command.h"
#include "server/cli/random_model_command.h"
#include "server/cli/serve_command.h"
#include "server/cli/serve_limit_flags.h"
#include "server/cli/throughput_command.h"
#include "server/cli/tokenize_command.h"

namespace kaon {
namespace {

// Where `kaon serve` with no model looks for the bundled one: next to the
// working directory, then in the source tree this binary was built from.
std::string DefaultModelDir() {
  const std::string local = "models/stories260k";
  std::error_code ec;
  if (std::filesystem::is_directory(local, ec)) return local;
  return std::string(KAON_SOURCE_DIR) + "/models/stories260k";
}

void AddEngineFlags(CLI::App* cmd, EngineConfig* config) {
  EngineOptions* o = &config->options;
  AddSizeOption(cmd, "--max-model-len", o->max_model_len,
                "Context length (prompt + output); default: the model's max_position_embeddings");
  AddSizeOption(cmd, "--max-num-batched-tokens", o->max_num_batched_tokens, "Tokens per forward pass", 1)
      ->capture_default_str();
  AddSizeOption(cmd, "--max-num-seqs", o->max_num_seqs, "Sequences per forward pass", 1)->capture_default_str();
  AddIntegerOption(cmd, "--block-size", o->block_size, "Tokens per KV cache block", 1, 1024)->capture_default_str();
  AddSizeOption(cmd, "--num-kv-blocks", o->num_kv_blocks, "KV cache blocks (default: sized automatically)", 1);
  AddIntegerOption(cmd, "--threads", o->num_threads, "CPU worker threads (default: all cores)", 1);
  cmd->add_option("--cpu-isa", o->cpu_isa,
                  "CPU kernels' instruction set: auto (the best this CPU has), avx512, avx2 or scalar")
      ->capture_default_str();
  cmd->add_option_function<std::string>(
         "--scheduling-policy",
         [config](const std::string& p) {
           if (p == "fcfs") {
             config->policy = SchedulingPolicy::kFcfs;
           } else if (p == "priority") {
             config->policy = SchedulingPolicy::kPriority;
           } else {
             throw CLI::ValidationError("--scheduling-policy", "must be fcfs or priority");
           }
         },
         "fcfs (default) or priority (lower `priority` values first)");
  AddSizeOption(cmd, "--max-num-queued-requests", config->max_num_queued_requests,
                "Waiting requests before new ones are refused (0: unbounded)");
  cmd->add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", config->enable_prefix_caching,
                "Reuse the KV cache of shared prompt prefixes (default: on)");
  cmd->add_option("--device", o->device,
                  "cpu, cuda (needs libkaon_cuda.so next to kaon and a GPU) or auto (cuda when available)")
      ->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "auto (cpu: float32, cuda: bfloat16), float32, bfloat16 or float16")
      ->capture_default_str();
  AddIntegerOption(cmd, "--tensor-parallel-size", o->tensor_parallel_size, "GPUs to shard the model over (only 1 yet)",
                   1)
      ->capture_default_str();
  AddNumberOption(cmd, "--gpu-memory-utilization", o->gpu_memory_utilization,
                  "Share of the GPU's memory for weights, activations and the KV cache (KV gets the rest)")
      ->capture_default_str();
  cmd->add_option_function<std::string>(
         "--load-format",
         [o](const std::string& f) {
           if (f == "auto") {
             o->dummy_weights = false;
           } else if (f == "dummy") {
             o->dummy_weights = true;
           } else {
             throw CLI::ValidationError("--load-format", "must be auto or dummy");
           }
         },
         "auto (the directory's safetensors) or dummy (random weights of the config's shapes, as "
         "`kaon random-model --seed 0` writes them; only config.json and the tokenizer are read)")
      ->default_str("auto");
}

// `kaon serve`'s own flags; the engine's are added with AddEngineFlags.
void AddServeFlags(CLI::App* serve, ServeFlags* sf) {
  serve->add_option("model", sf->model_dir, "Hugging Face model directory")->capture_default_str();
  serve->add_option("--host", sf->host, "Address to listen on")->capture_default_str();
  AddIntegerOption(serve, "--port", sf->port, "Port to listen on (0: any free port)", 0, 65535)->capture_default_str();
  AddIntegerOption(serve, "--grpc-port", sf->grpc_port,
                   "Also serve the gRPC API (kaon.v1.Generation, health, reflection) on this port (0: any free "
                   "port); without it there is no gRPC listener",
                   0, 65535);
  serve->add_option("--served-model-name", sf->served_model_name,
                    "Model name clients must use (default: the directory's name)");
  serve->add_option("--chat-template", sf->chat_template_file, "A Jinja template file to use instead of the model's");
  serve->add_option("--api-key", sf->api_key,
                    "Require 'Authorization: Bearer KEY' on /v1 and tokenize routes and gRPC calls (default: env "
                    "KAON_API_KEY)");
  serve->add_option("--allowed-origins", sf->allowed_origins,
                    "CORS origins: a JSON list or comma-separated, '*' for any (default: no CORS)");
  AddSizeOption(serve, "--max-request-bytes", sf->max_request_bytes,
                "Largest request body or gRPC message (16M = 16 MiB); larger ones get 413 (gRPC: RESOURCE_EXHAUSTED)",
                1)
      ->capture_default_str();
  AddNumberOption(serve, "--shutdown-timeout", sf->shutdown_timeout_s,
                  "Seconds in-flight requests may finish after SIGTERM/SIGINT (a second signal stops at once)",
                  AtLeast(0))
      ->capture_default_str();
  AddNumberOption(serve, "--engine-step-timeout", sf->engine_step_timeout_s,
                  "A step running longer than this many seconds is fatal: /health turns 503, requests fail, exit 1",
                  Above(0))
      ->capture_default_str();
  AddNumberOption(serve, "--timeout-keep-alive", sf->timeout_keep_alive_s,
                  "Seconds an idle keep-alive connection (or one sending its headers) may stay open", Above(0))
      ->capture_default_str();
  serve->add_flag("!--disable-log-requests", sf->log_requests, "Do not log one line per request to stderr");
  AddServeLimitFlags(serve, sf);
  AddEngineFlags(serve, &sf->engine);
}

void AddGenerateFlags(CLI::App* generate, GenerateFlags* gen) {
  generate->add_option("model", gen->model_dir, "Hugging Face model directory")->required();
  auto* prompt = generate->add_option("--prompt", gen->prompt, "Prompt text (tokenized with special tokens)");
  auto* prompt_ids = generate->add_option("--prompt-ids", gen->prompt_ids, "Prompt token ids, comma-separated");
  prompt->excludes(prompt_ids);
  AddSizeOption(generate, "--max-tokens", gen->max_tokens, "Tokens to generate", 1)->capture_default_str();
  AddNumberOption(generate, "--temperature", gen->temperature, "0 = greedy (default: generation_config.json, else 1)",
                  AtLeast(0));
  AddNumberOption(generate, "--top-p", gen->top_p, "Nucleus sampling mass in (0, 1]", Between(0, 1));
  AddIntegerOption(generate, "--top-k", gen->top_k, "Keep the k most likely tokens (0 or -1: all)", -1, 1 << 30);
  AddNumberOption(generate, "--min-p", gen->min_p, "Drop tokens below min_p times the top probability",
                  Between(0, 1));
  generate->add_option("--seed", gen->seed, "Random seed for sampling");
  generate->add_flag("--ignore-eos", gen->ignore_eos, "Do not stop at end-of-sequence tokens");
  generate->add_flag("--json", gen->json, "Print one JSON object with ids, text and finish reason");
  AddEngineFlags(generate, &gen->engine);
}

void AddThroughputFlags(CLI::App* throughput, ThroughputFlags* tp) {
  throughput->add_option("model", tp->model_dir, "Hugging Face model directory")->required();
  AddSizeOption(throughput, "--num-prompts", tp->num_prompts, "Requests to run", 1)->capture_default_str();
  AddSizeOption(throughput, "--input-len", tp->input_len, "Prompt tokens per request", 1)->capture_default_str();
  AddSizeOption(throughput, "--output-len", tp->output_len, "Generated tokens per request", 1)->capture_default_str();
  AddSizeOption(throughput, "--max-concurrency", tp->max_concurrency, "Requests in flight (default: all)", 1);
  throughput->add_option("--seed", tp->seed, "Seed for prompts and sampling")->capture_default_str();
  AddNumberOption(throughput, "--temperature", tp->temperature, "0 = greedy", AtLeast(0))->capture_default_str();
  AddNumberOption(throughput, "--top-p", tp->top_p, "Nucleus sampling mass in (0, 1]", Between(0, 1))
      ->capture_default_str();
  AddIntegerOption(throughput, "--top-k", tp->top_k, "Keep the k most likely tokens (0 or -1: all)", -1, 1 << 30)
      ->capture_default_str();
  AddNumberOption(throughput, "--min-p", tp->min_p, "Drop tokens below min_p times the top probability",
                  Between(0, 1))
      ->capture_default_str();
  AddNumberOption(throughput, "--repetition-penalty", tp->repetition_penalty, "> 1 discourages repeats",
                  AtLeast(0))
      ->capture_default_str();
  throughput->add_flag("--json", tp->json, "Print one JSON object");
  AddEngineFlags(throughput, &tp->engine);
}

void AddRandomModelFlags(CLI::App* random_model, RandomModelFlags* rm) {
  random_model->add_option("--config", rm->config_path, "A Llama-family config.json")->required();
  random_model->add_option("--out", rm->out_dir, "Output model directory")->required();
  random_model->add_option("--tokenizer-from", rm->tokenizer_from, "Model directory to copy the tokenizer from");
  random_model->add_option("--seed", rm->seed, "Seed for the weights")->capture_default_str();
  random_model->add_option("--dtype", rm->dtype, "float32 | bfloat16")
      ->capture_default_str()
      ->check(CLI::IsMember({"float32", "bfloat16"}));
}

// The last resort for a command's start-up: anything thrown (an allocation
// sized by a flag, above all) becomes one line and exit code 1, not an abort.
int RunGuarded(const std::string& command, const std::function<int()>& run) {
  try {
    return run();
  } catch (const std::bad_alloc& e) {
    std::cerr << command << ": out of memory: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << command << ": " << e.what() << "\n";
  }
  return 1;
}

int Main(int argc, char** argv) {
  CLI::App app{"kaon: an LLM inference server with an OpenAI-compatible API", "kaon"};
  app.require_subcommand(1);

  ServeFlags sf;
  sf.model_dir = DefaultModelDir();
  CLI::App* serve = app.add_subcommand("serve", "Serve a model over HTTP (OpenAI API) and, with --grpc-port, gRPC");
  AddServeFlags(serve, &sf);
  serve->footer(kSizeFormsHelp);

  GenerateFlags gen;
  CLI::App* generate = app.add_subcommand("generate", "Generate text offline through the engine");
  AddGenerateFlags(generate, &gen);
  generate->footer(kSizeFormsHelp);

  ThroughputFlags tp;
  CLI::App* throughput = app.add_subcommand("throughput", "Measure offline throughput with random prompts");
  AddThroughputFlags(throughput, &tp);
  throughput->footer(kSizeFormsHelp);

  RandomModelFlags rm;
  CLI::App* random_model =
      app.add_subcommand("random-model", "Write a random-weight checkpoint for a config (like --load-format dummy)");
  AddRandomModelFlags(random_model, &rm);

  std::string tpl_model;
  std::optional<std::string> tpl_file;
  CLI::App* chat_template =
      app.add_subcommand("chat-template", "Render a chat template for one JSON request on stdin");
  chat_template->add_option("model", tpl_model, "Hugging Face model directory")->required();
  chat_template->add_option("--chat-template", tpl_file, "A Jinja template file to use instead of the model's");

  std::string tok_model;
  bool jsonl = false;
  CLI::App* tokenize = app.add_subcommand("tokenize", "Tokenize or detokenize JSON lines on stdin");
  tokenize->add_option("model", tok_model, "Hugging Face model directory")->required();
  tokenize->add_flag("--jsonl", jsonl, "Read/write JSON lines (the only mode)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ReportParseError(app, e, std::cout, std::cerr);
  }

  const std::string command = CommandName(app);
  return RunGuarded(command, [&]() -> int {
    if (*serve) return RunServeCommand(sf, std::cout, std::cerr);
    if (*generate) return RunGenerateCommand(gen, std::cout, std::cerr);
    if (*chat_template) return RunChatTemplateCommand(tpl_model, tpl_file, std::cin, std::cout, std::cerr);
    if (*random_model) return RunRandomModelCommand(rm, std::cout, std::cerr);
    if (*throughput) return RunThroughputCommand(tp, std::cout, std::cerr);
    if (*tokenize) return RunTokenizeCommand(tok_model, std::cin, std::cout, std::cerr);
    return kUsageExitCode;
  });
}

}  // namespace
}  // namespace kaon

int main(int argc, char** argv) { return kaon::Main(argc, argv); }
