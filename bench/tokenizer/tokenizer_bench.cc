// Encode throughput of kaon's tokenizer on the corpus from make_corpus.js.
//   kaon_tokenizer_bench CORPUS.jsonl MODEL_DIR...
// Single-threaded: the whole corpus as one string (first pass with an empty
// word cache, then best of 3) and one Encode call per document.
#include <chrono>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/tokenizer/tokenizer.h"

namespace {

double Seconds(const std::chrono::steady_clock::time_point& t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: kaon_tokenizer_bench CORPUS.jsonl MODEL_DIR...\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  std::vector<std::string> docs;
  std::string whole;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    docs.push_back(nlohmann::json::parse(line).get<std::string>());
    whole += docs.back();
  }
  const double mb = whole.size() / 1e6;
  for (int i = 2; i < argc; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto tok = kaon::Tokenizer::FromModelDir(argv[i]);
    if (!tok.ok()) {
      std::cerr << tok.status() << "\n";
      return 1;
    }
    const double load = Seconds(t0);
    t0 = std::chrono::steady_clock::now();
    const size_t n_whole = (*tok)->Encode(whole, false).size();
    const double cold = Seconds(t0);
    double best = 1e9;
    for (int r = 0; r < 3; ++r) {
      t0 = std::chrono::steady_clock::now();
      (*tok)->Encode(whole, false);
      best = std::min(best, Seconds(t0));
    }
    double best_doc = 1e9;
    size_t n_doc = 0;
    for (int r = 0; r < 3; ++r) {
      n_doc = 0;
      t0 = std::chrono::steady_clock::now();
      for (const std::string& d : docs) n_doc += (*tok)->Encode(d, false).size();
      best_doc = std::min(best_doc, Seconds(t0));
    }
    std::cout << "kaon " << argv[i] << ": " << mb << " MB, " << n_whole << " tokens (whole), " << n_doc
              << " tokens (per doc), load " << load << " s\n"
              << "  whole text, one Encode: first " << mb / cold << " MB/s, best " << mb / best << " MB/s\n"
              << "  " << docs.size() << " docs, one Encode call each: " << mb / best_doc << " MB/s\n";
  }
  return 0;
}
