// A small gRPC load generator for the front-end overhead report (not a
// test): N prompts of random token ids, each streamed through Generate with
// ignore_eos, at most C in flight (one client thread per stream slot).
// Prints one JSON object: output tokens, stream messages, wall time,
// output tokens/s, failures.
//
//   grpc_load --target 127.0.0.1:PORT [--num-prompts 256] [--concurrency 64]
//             [--input-len 128] [--output-len 128] [--vocab 512] [--seed 1]
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kaon/v1/kaon.grpc.pb.h"

int main(int argc, char** argv) {
  std::string target;
  int num_prompts = 256, concurrency = 64, input_len = 128, output_len = 128, vocab = 512, seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--target") target = v;
    else if (k == "--num-prompts") num_prompts = std::atoi(v);
    else if (k == "--concurrency") concurrency = std::atoi(v);
    else if (k == "--input-len") input_len = std::atoi(v);
    else if (k == "--output-len") output_len = std::atoi(v);
    else if (k == "--vocab") vocab = std::atoi(v);
    else if (k == "--seed") seed = std::atoi(v);
    else {
      std::fprintf(stderr, "grpc_load: unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if (target.empty()) {
    std::fprintf(stderr, "grpc_load: --target HOST:PORT is required\n");
    return 2;
  }
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> id(3, vocab - 1);  // past BOS/EOS
  std::vector<kaon::v1::GenerateRequest> requests(num_prompts);
  for (kaon::v1::GenerateRequest& r : requests) {
    for (int j = 0; j < input_len; ++j) r.mutable_token_ids()->add_ids(id(rng));
    r.set_max_tokens(output_len);
    r.set_ignore_eos(true);
  }
  // One channel per 16 streams, as a client pool would (one HTTP/2
  // connection carries at most ~100 concurrent streams by default).
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < (concurrency + 15) / 16; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", i);  // distinct channels, not one shared subchannel
    channels.push_back(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  }
  std::atomic<int> next{0};
  std::atomic<int64_t> tokens{0}, messages{0}, failures{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      auto stub = kaon::v1::Generation::NewStub(channels[t / 16]);
      for (int i; (i = next.fetch_add(1)) < num_prompts;) {
        grpc::ClientContext ctx;
        auto reader = stub->Generate(&ctx, requests[i]);
        kaon::v1::GenerateResponse m;
        while (reader->Read(&m)) {
          messages.fetch_add(1, std::memory_order_relaxed);
          for (const kaon::v1::Choice& c : m.choices()) tokens.fetch_add(c.token_ids_size(), std::memory_order_relaxed);
        }
        if (!reader->Finish().ok()) failures.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "{\"num_prompts\": %d, \"concurrency\": %d, \"total_output_tokens\": %lld, \"messages\": %lld, "
      "\"duration_s\": %.3f, \"output_throughput\": %.1f, \"failures\": %lld}\n",
      num_prompts, concurrency, static_cast<long long>(tokens.load()), static_cast<long long>(messages.load()), secs,
      tokens.load() / secs, static_cast<long long>(failures.load()));
  return failures.load() == 0 ? 0 : 1;
}
