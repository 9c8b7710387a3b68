// kaon-bench: a load generator for OpenAI-compatible servers (kaon, vLLM,
// SGLang, llama.cpp, ...) and for kaon's gRPC API (--backend kaon-grpc).
// Flag names follow `vllm bench serve` so a command line moves between the
// two tools by changing the program name.
#include <cmath>
#include <ctime>
#include <fstream>
#include <iostream>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "bench/kaon_bench/cost.h"
#include "bench/kaon_bench/dataset.h"
#include "bench/kaon_bench/grpc_client.h"
#include "bench/kaon_bench/http_client.h"
#include "bench/kaon_bench/metrics.h"
#include "bench/kaon_bench/report.h"
#include "bench/kaon_bench/run_checks.h"
#include "bench/kaon_bench/runner.h"
#include "bench/kaon_bench/svg.h"
#include "bench/kaon_bench/sweep.h"
#include "bench/kaon_bench/token_counter.h"
#include "nlohmann/json.hpp"
#include "server/cli/flag_errors.h"
#include "server/cli/flag_options.h"

namespace kaon::bench {
namespace {

using Json = nlohmann::ordered_json;

struct Flags {
  std::string backend = "openai-completions";
  std::string base_url, host = "127.0.0.1", endpoint, model, tokenizer, api_key;
  int port = 8000;
  DatasetOptions data;
  std::string request_rate = "inf";
  double burstiness = 1.0;
  int max_concurrency = 0;
  bool ignore_eos = false;
  double temperature = 0.0;
  int num_warmups = 0;
  std::string percentile_metrics = "ttft,tpot,itl";
  std::string percentiles = "50,90,99";
  std::vector<std::string> goodput;
  std::optional<double> gpu_cost_per_hour;
  int num_gpus = 1;
  double api_price_input = kDefaultApiPriceInput, api_price_output = kDefaultApiPriceOutput;
  std::vector<std::string> slo;
  std::string sweep_rates, sweep_plot, result_json, save_requests;
  double sweep_start_rate = 1.0;
  bool disable_progress = false;
  double request_timeout = 6 * 3600;
};

double ParseRate(const std::string& s) {
  const std::vector<double> r = ParseRates(s, "--request-rate");  // "inf" or a positive number, with a clear error
  if (r.size() != 1) throw std::runtime_error("--request-rate takes one rate (use --sweep-rates for several)");
  return r[0];
}

std::vector<double> ParsePercentiles(const std::string& csv) {
  std::vector<double> out;
  for (const std::string& p : SplitComma(csv)) {
    char* end = nullptr;
    const double v = std::strtod(p.c_str(), &end);
    if (end == p.c_str() || *end != '\0' || v < 0 || v > 100)
      throw std::runtime_error("--metric-percentiles: '" + p + "' is not a number in [0, 100]");
    out.push_back(v);
  }
  return out;
}

void AddFlags(CLI::App& app, Flags& f) {
  app.add_option("--backend", f.backend,
                 "openai-completions | openai-chat (OpenAI HTTP) | kaon-grpc (kaon.v1.Generation/Generate, streamed, "
                 "text input)")
      ->capture_default_str();
  app.add_option("--base-url", f.base_url,
                 "Server URL, e.g. http://127.0.0.1:8000; for kaon-grpc grpc://127.0.0.1:50051 or 127.0.0.1:50051 "
                 "(default: from --host/--port)");
  app.add_option("--host", f.host, "Server host when --base-url is not given")->capture_default_str();
  AddIntegerOption(&app, "--port", f.port, "Server port when --base-url is not given", 1, 65535)->capture_default_str();
  app.add_option("--endpoint", f.endpoint,
                 "Request path (default: /v1/completions or /v1/chat/completions; not used by kaon-grpc)");
  app.add_option("--model", f.model, "Model name to send (default: the first of GET /v1/models, or of ListModels)");
  app.add_option("--tokenizer", f.tokenizer,
                 "tokenizer.json or a model directory, for local token counting (default: the server's /tokenize "
                 "or gRPC Tokenize, else one token per word)");
  app.add_option("--api-key", f.api_key,
                 "Bearer token, as Authorization header or kaon-grpc `authorization` metadata (default: $OPENAI_API_KEY)");
  app.add_option("--dataset-name", f.data.name, "random | sharegpt | prefix-repetition | custom")->capture_default_str();
  app.add_option("--dataset-path", f.data.path, "ShareGPT JSON file, or the custom prompts file (JSON lines or text)");
  AddSizeOption(&app, "--num-prompts", f.data.num_prompts, "Requests to send", 1)->capture_default_str();
  AddSizeOption(&app, "--random-input-len", f.data.random_input_len, "Prompt tokens (random)")->capture_default_str();
  AddSizeOption(&app, "--random-output-len", f.data.random_output_len, "max_tokens (random)", 1)->capture_default_str();
  AddNumberOption(&app, "--random-range-ratio", f.data.random_range_ratio,
                  "Lengths uniform in [L(1-r), L(1+r)], r in [0, 1)", NumberRange{0, 1, false, true})
      ->capture_default_str();
  AddSizeOption(&app, "--sharegpt-output-len", f.data.sharegpt_output_len,
                "Fixed max_tokens instead of the second turn's length", 1);
  AddSizeOption(&app, "--prefix-repetition-prefix-len", f.data.prefix_len, "Shared prefix tokens")->capture_default_str();
  AddSizeOption(&app, "--prefix-repetition-suffix-len", f.data.suffix_len, "Unique suffix tokens")->capture_default_str();
  AddSizeOption(&app, "--prefix-repetition-num-prefixes", f.data.num_prefixes, "Distinct prefixes", 1)
      ->capture_default_str();
  AddSizeOption(&app, "--prefix-repetition-output-len", f.data.prefix_output_len, "max_tokens", 1)->capture_default_str();
  AddSizeOption(&app, "--custom-output-len", f.data.custom_output_len, "max_tokens for custom prompts without output_len",
                1)
      ->capture_default_str();
  app.add_option("--request-rate", f.request_rate, "Requests per second, or inf (all at once)")->capture_default_str();
  AddNumberOption(&app, "--burstiness", f.burstiness, "Gamma shape of the arrival gaps (1: Poisson)", Above(0))
      ->capture_default_str();
  AddSizeOption(&app, "--max-concurrency", f.max_concurrency, "Requests in flight at most (0: unlimited)")
      ->capture_default_str();
  app.add_flag("--ignore-eos", f.ignore_eos, "Ask the server to generate max_tokens regardless of EOS");
  AddNumberOption(&app, "--temperature", f.temperature, "Sampling temperature sent with each request", AtLeast(0))
      ->capture_default_str();
  app.add_option("--seed", f.data.seed, "Seed for the dataset and the arrival times")->capture_default_str();
  AddSizeOption(&app, "--num-warmups", f.num_warmups, "Requests sent (and not measured) before the run")
      ->capture_default_str();
  app.add_option("--percentile-metrics", f.percentile_metrics, "Metrics to show: ttft,tpot,itl,e2el")->capture_default_str();
  app.add_option("--metric-percentiles,--percentiles", f.percentiles, "Percentiles to report, e.g. 50,90,99")
      ->capture_default_str();
  app.add_option("--goodput", f.goodput, "SLOs for goodput: ttft:MS tpot:MS e2el:MS");
  AddNumberOption(&app, "--gpu-cost-per-hour", f.gpu_cost_per_hour, "USD per GPU-hour; enables the cost report",
                  AtLeast(0));
  AddIntegerOption(&app, "--num-gpus", f.num_gpus, "GPUs the server uses", 1)->capture_default_str();
  AddNumberOption(&app, "--api-price-input", f.api_price_input,
                  std::string("API USD per 1M input tokens (default: ") + kDefaultApiPriceSource + ")", AtLeast(0))
      ->capture_default_str();
  AddNumberOption(&app, "--api-price-output", f.api_price_output, "API USD per 1M output tokens", AtLeast(0))
      ->capture_default_str();
  app.add_option("--slo", f.slo, "SLO for --sweep-rates: ttft:MS,tpot:MS[,e2el:MS]");
  app.add_option("--sweep-rates", f.sweep_rates,
                 "Request rates to run in turn, e.g. 1,2,4,8; or auto: double from --sweep-start-rate, then bisect");
  AddNumberOption(&app, "--sweep-start-rate", f.sweep_start_rate, "First rate of --sweep-rates auto", Above(0))
      ->capture_default_str();
  app.add_option("--sweep-plot", f.sweep_plot, "SVG throughput-latency plot of the sweep (default: kaon-bench-sweep.svg)");
  app.add_option("--result-json", f.result_json, "Write all metrics and the configuration as JSON");
  app.add_option("--save-requests", f.save_requests, "Write one JSON line per request");
  app.add_flag("--disable-tqdm,--no-progress", f.disable_progress, "No progress output");
  AddNumberOption(&app, "--request-timeout", f.request_timeout, "Seconds before a request is abandoned", Above(0))
      ->capture_default_str();
}

std::string Now() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string FirstModel(const Endpoint& ep, const std::string& api_key) {
  HttpReply r = HttpCall(ep, "GET", "/v1/models", "", api_key);
  if (r.status != 200) {
    throw std::runtime_error("--model not given and GET /v1/models failed: " +
                             (r.status ? "HTTP " + std::to_string(r.status) : r.error));
  }
  Json j = Json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() ||
      !j["data"][0].contains("id")) {
    throw std::runtime_error("--model not given and /v1/models lists no model");
  }
  return j["data"][0]["id"].get<std::string>();
}

Json ConfigJson(const Flags& f, const std::string& base_url, const std::string& counter) {
  Json c;
  c["backend"] = f.backend;
  c["base_url"] = base_url;
  c["endpoint"] = f.endpoint;
  c["model"] = f.model;
  c["tokenizer"] = f.tokenizer;
  c["token_counter"] = counter;
  c["dataset_name"] = f.data.name;
  c["dataset_path"] = f.data.path;
  c["num_prompts"] = f.data.num_prompts;
  c["random_input_len"] = f.data.random_input_len;
  c["random_output_len"] = f.data.random_output_len;
  c["random_range_ratio"] = f.data.random_range_ratio;
  c["request_rate"] = f.request_rate;
  c["burstiness"] = f.burstiness;
  c["max_concurrency"] = f.max_concurrency;
  c["ignore_eos"] = f.ignore_eos;
  c["temperature"] = f.temperature;
  c["seed"] = f.data.seed;
  c["num_warmups"] = f.num_warmups;
  c["percentiles"] = f.percentiles;
  c["goodput"] = f.goodput;
  c["slo"] = f.slo;
  c["sweep_rates"] = f.sweep_rates;
  c["ttft_definition"] = "send to the first chunk carrying generated text";
  return c;
}

int Run(Flags& f) {
  Backend backend = Backend::kOpenAiCompletions;
  bool grpc = false;
  if (f.backend == "openai-completions" || f.backend == "openai") backend = Backend::kOpenAiCompletions;
  else if (f.backend == "openai-chat") backend = Backend::kOpenAiChat;
  else if (f.backend == "kaon-grpc") grpc = true;
  else throw std::runtime_error("unknown --backend " + f.backend);

  // Flags are checked before any request or dataset work.
  const std::vector<double> percentiles = ParsePercentiles(f.percentiles);
  ReportOptions rep;
  rep.percentile_metrics.clear();
  for (const std::string& m : SplitComma(f.percentile_metrics)) {
    if (m != "ttft" && m != "tpot" && m != "itl" && m != "e2el")
      throw std::runtime_error("unknown --percentile-metrics entry " + m);
    rep.percentile_metrics.insert(m);
  }
  rep.goodput = ParseSlo(f.goodput);
  rep.cost_inputs.gpu_cost_per_hour = f.gpu_cost_per_hour.value_or(0);
  rep.cost_inputs.num_gpus = f.num_gpus;
  rep.cost_inputs.api_price_input = f.api_price_input;
  rep.cost_inputs.api_price_output = f.api_price_output;

  const double request_rate = ParseRate(f.request_rate);
  const bool auto_sweep = f.sweep_rates == "auto";
  const std::vector<double> sweep_rates =
      f.sweep_rates.empty() || auto_sweep ? std::vector<double>{} : ParseRates(f.sweep_rates);
  const SloThresholds sweep_slo = ParseSlo(f.slo);
  if ((auto_sweep || !sweep_rates.empty()) && sweep_slo.empty()) throw std::runtime_error("--sweep-rates needs --slo ttft:MS,tpot:MS");

  if (f.api_key.empty()) {
    if (const char* k = std::getenv("OPENAI_API_KEY")) f.api_key = k;
  }
  const std::string base_url = f.base_url.empty() ? (grpc ? "grpc://" : "http://") + f.host + ":" + std::to_string(f.port)
                                                   : f.base_url;
  Endpoint ep;
  std::shared_ptr<GrpcClient> grpc_client;
  if (grpc) {
    grpc_client = std::make_shared<GrpcClient>(ParseGrpcTarget(base_url),
                                               GrpcChannelsFor(f.max_concurrency, f.data.num_prompts));
    if (f.model.empty()) f.model = grpc_client->FirstModel(f.api_key);
  } else {
    ep = ParseBaseUrl(base_url);
    if (f.model.empty()) f.model = FirstModel(ep, f.api_key);
  }

  std::unique_ptr<TokenCounter> counter;
  if (!f.tokenizer.empty()) counter = MakeLocalTokenCounter(f.tokenizer);
  if (!counter) {
    counter = MakeServerTokenCounter(
        [&](const std::string& path, const std::string& body) -> std::optional<std::string> {
          if (grpc) {
            // The counter speaks /tokenize's JSON; gRPC Tokenize answers it.
            const Json req = Json::parse(body, nullptr, false);
            if (!req.is_object() || !req.contains("prompt") || !req["prompt"].is_string()) return std::nullopt;
            const std::optional<int64_t> n =
                grpc_client->CountTokens(f.model, req["prompt"].get<std::string>(), f.api_key);
            if (!n) return std::nullopt;
            Json reply;
            reply["count"] = *n;
            return reply.dump();
          }
          HttpReply r = HttpCall(ep, "POST", path, body, f.api_key);
          if (r.status != 200) return std::nullopt;
          return r.body;
        },
        f.model, grpc ? "server gRPC Tokenize" : "server /tokenize");
  }
  if (!counter) counter = MakeWordTokenCounter();
  std::cerr << "kaon-bench: " << base_url << " model " << f.model << ", token counts from " << counter->Describe()
            << "\n";

  const std::vector<SampleRequest> requests = BuildDataset(f.data, *counter);
  if (requests.empty()) throw std::runtime_error("the dataset produced no requests");
  if (static_cast<int>(requests.size()) < f.data.num_prompts) {
    std::cerr << "kaon-bench: warning: the dataset yielded " << requests.size() << " of " << f.data.num_prompts
              << " prompts\n";
  }
  // Prompts made from the seed: a sweep gives each rate (and the warm-up) its
  // own seed, so a prefix-caching server does not serve one rate from the
  // KV cache another rate filled. Files (sharegpt, custom) give the same
  // prompts, reshuffled for sharegpt.
  auto dataset_for = [&](uint64_t seed_offset, int num_prompts) {
    if (seed_offset == 0 && num_prompts == f.data.num_prompts) return requests;
    DatasetOptions d = f.data;
    d.seed += seed_offset;
    d.num_prompts = num_prompts;
    return BuildDataset(d, *counter);
  };

  RunOptions ro;
  ro.endpoint = ep;
  ro.body.backend = backend;
  ro.body.model = f.model;
  ro.body.ignore_eos = f.ignore_eos;
  ro.body.temperature = f.temperature;
  ro.path = f.endpoint.empty() ? DefaultEndpoint(backend) : f.endpoint;
  ro.api_key = f.api_key;
  ro.burstiness = f.burstiness;
  ro.max_concurrency = f.max_concurrency;
  ro.seed = f.data.seed;
  ro.timeout_s = f.request_timeout;
  ro.show_progress = !f.disable_progress;
  ro.grpc = grpc_client;

  // As `vllm bench serve`: one request first, so that a wrong URL, model,
  // key or endpoint stops here with the server's answer instead of failing
  // every request of the run.
  std::cerr << "kaon-bench: starting initial single prompt test run...\n";
  if (const std::optional<std::string> error = RunInitialTest(requests.front(), ro)) {
    throw std::runtime_error("the initial test request failed: " + *error);
  }
  std::cerr << "kaon-bench: initial test run completed, starting the main benchmark run\n";

  if (f.num_warmups > 0) {
    const std::vector<SampleRequest> warm = dataset_for(1000003, f.num_warmups);
    RunOptions wo = ro;
    wo.label = "warm-up";
    RunResult w = RunBenchmark(warm, wo);
    int failed = 0;
    for (const RequestOutput& r : w.outputs) failed += r.success ? 0 : 1;
    std::cerr << "kaon-bench: " << f.num_warmups << " warm-up requests done (" << failed << " failed)\n";
  }

  Json result;
  result["date"] = Now();
  result["tool"] = "kaon-bench";
  result["config"] = ConfigJson(f, base_url, counter->Describe());
  std::ofstream requests_out;
  if (!f.save_requests.empty()) {
    requests_out.open(f.save_requests);
    if (!requests_out) throw std::runtime_error("cannot write --save-requests " + f.save_requests);
  }

  FailureTally tally;
  auto measure = [&](double rate, const std::string& label, uint64_t seed_offset) {
    RunOptions o = ro;
    o.request_rate = rate;
    o.label = label;
    RunResult run = RunBenchmark(dataset_for(seed_offset, f.data.num_prompts), o);
    tally.Add(run.outputs);
    if (requests_out.is_open()) WriteRequestLines(requests_out, run.outputs, rate);
    int64_t without_usage = 0;
    for (const RequestOutput& r : run.outputs) without_usage += r.success && !r.usage_reported ? 1 : 0;
    if (without_usage > 0) {
      std::cerr << "kaon-bench: warning: " << without_usage
                << " responses carried no usage; their output tokens are counted as content chunks\n";
    }
    SweepPoint p;
    p.request_rate = rate;
    p.metrics = ComputeMetrics(run.outputs, run.duration_s, percentiles, rep.goodput);
    p.cost = ComputeCost(rep.cost_inputs, run.duration_s, p.metrics.total_input_tokens, p.metrics.total_output_tokens);
    return std::make_pair(p, run.outputs);
  };

  if (f.sweep_rates.empty()) {
    auto [point, outputs] = measure(request_rate, "kaon-bench", 0);
    if (f.gpu_cost_per_hour) rep.cost = point.cost;
    PrintSummary(std::cout, point.metrics, rep);
    Json m = MetricsJson(point.metrics, rep);
    for (auto it = m.begin(); it != m.end(); ++it) result[it.key()] = it.value();
  } else {
    const SloThresholds& slo = sweep_slo;
    std::vector<SweepPoint> points;
    Json sweep = Json::array();
    const RateSearch search(f.sweep_start_rate);
    for (size_t i = 0;; ++i) {
      std::optional<double> next;
      if (auto_sweep) next = search.Next(points);
      else if (i < sweep_rates.size()) next = sweep_rates[i];
      if (!next) break;
      const double rate = *next;
      std::ostringstream label;
      label << "rate " << rate;
      auto [point, outputs] = measure(rate, label.str(), i);
      point.slo_attainment = SloAttainment(outputs, slo);
      ReportOptions r = rep;
      if (f.gpu_cost_per_hour) r.cost = point.cost;
      std::cout << "Request rate " << rate << " req/s\n";
      PrintSummary(std::cout, point.metrics, r);
      Json pj;
      pj["request_rate"] = std::isinf(rate) ? Json("inf") : Json(rate);
      pj["slo_attainment"] = point.slo_attainment;
      pj["metrics"] = MetricsJson(point.metrics, r);
      sweep.push_back(pj);
      points.push_back(point);
    }
    const std::optional<size_t> best = BestSweepPoint(points);
    PrintSweep(std::cout, points, best, slo, f.gpu_cost_per_hour.has_value());
    result["sweep"] = sweep;
    result["slo_attainment_target"] = kSloAttainmentTarget;
    // JSON has no infinity: an unlimited rate is written as "inf".
    result["best_request_rate"] = !best ? Json(nullptr)
                                  : std::isinf(points[*best].request_rate) ? Json("inf")
                                                                           : Json(points[*best].request_rate);
    if (best) {
      result["best_output_throughput"] = points[*best].metrics.output_throughput;
      if (f.gpu_cost_per_hour) result["best_cost"] = CostJson(points[*best].cost, rep.cost_inputs);
    }
    const std::string plot = f.sweep_plot.empty() ? "kaon-bench-sweep.svg" : f.sweep_plot;
    std::ofstream svg(plot);
    if (!svg) throw std::runtime_error("cannot write --sweep-plot " + plot);
    svg << SweepSvg(points, slo, "kaon-bench: " + f.model + " at " + base_url);
    std::cerr << "kaon-bench: sweep plot written to " << plot << "\n";
  }

  if (!f.result_json.empty()) {
    std::ofstream out(f.result_json);
    if (!out) throw std::runtime_error("cannot write --result-json " + f.result_json);
    out << result.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
  }
  // The report above still shows what failed; the exit code tells a script
  // that there is no measurement.
  if (const std::optional<std::string> why = tally.AllFailed()) {
    std::cerr << "kaon-bench: " << *why << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace kaon::bench

int main(int argc, char** argv) {
  CLI::App app{
      "kaon-bench: load generator for OpenAI-compatible servers and kaon's gRPC API (flags follow `vllm bench serve`)",
      "kaon-bench"};
  kaon::bench::Flags flags;
  kaon::bench::AddFlags(app, flags);
  app.footer(kaon::kSizeFormsHelp);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return kaon::ReportParseError(app, e, std::cout, std::cerr);
  }
  try {
    return kaon::bench::Run(flags);
  } catch (const std::exception& e) {
    std::cerr << "kaon-bench: " << e.what() << "\n";
    return 1;
  }
}
