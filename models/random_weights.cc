#include "models/random_weights.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <random>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"

namespace kaon {
namespace {

constexpr int64_t kChunk = 1 << 18;

// FNV-1a: a stable hash of the tensor name (std::hash is not stable across
// library versions, and the draw must be reproducible).
uint64_t HashName(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// SplitMix64 finaliser: decorrelates nearby (seed, name, chunk) triples.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Fills out[0, n) with mean + std · N(0, 1), chunk by chunk in parallel.
// Box-Muller on 24-bit uniforms (two normals per 64-bit draw, tails cut at
// 5.8 σ, harmless for weights): cheaper than std::normal_distribution's
// polar method, whose CPU time dominated writing large models. Values depend
// on libm's logf/cosf/sinf, so files are reproducible per platform.
void FillNormal(uint64_t seed, const std::string& name, float mean, float std_dev, int64_t n, float* out) {
  const uint64_t base = Mix(seed ^ Mix(HashName(name)));
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  auto work = [&](int64_t first, int64_t stride) {
    constexpr float kTwoPi = 6.28318530717958647692f;
    constexpr float kInv24 = 1.0f / 16777216.0f;
    for (int64_t c = first; c < chunks; c += stride) {
      std::mt19937_64 gen(Mix(base + static_cast<uint64_t>(c)));
      const int64_t end = std::min(n, (c + 1) * kChunk);
      for (int64_t i = c * kChunk; i < end; i += 2) {
        const uint64_t x = gen();
        const float u1 = static_cast<float>((x >> 40) + 1) * kInv24;  // (0, 1]: log is finite
        const float u2 = static_cast<float>(x & 0xffffffu) * kInv24;
        const float r = std_dev * std::sqrt(-2.0f * std::log(u1));
        out[i] = mean + r * std::cos(kTwoPi * u2);
        if (i + 1 < end) out[i + 1] = mean + r * std::sin(kTwoPi * u2);
      }
    }
  };
  const int64_t threads =
      std::min<int64_t>(chunks, std::max(1u, std::thread::hardware_concurrency()));
  if (threads <= 1) {
    work(0, 1);
    return;
  }
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads; ++t) pool.emplace_back(work, t, threads);
  work(0, threads);
  for (std::thread& th : pool) th.join();
}

}  // namespace

std::vector<TensorToWrite> RandomModelTensors(const ModelInfo& info, uint64_t seed, DType dtype) {
  const ModelConfig& c = info.config;
  const int64_t h = c.hidden_size, d = c.head_dim, inter = c.intermediate_size;
  const float scale = static_cast<float>(std::min(1.0, std::sqrt(64.0 / static_cast<double>(h))));
  std::vector<TensorToWrite> out;
  auto add = [&](std::string name, std::vector<int64_t> shape, float mean, float std_dev) {
    TensorToWrite t{name, dtype, std::move(shape), nullptr};
    const int64_t n = t.numel();
    t.fill = [seed, name, mean, std_dev, n](float* values) { FillNormal(seed, name, mean, std_dev, n, values); };
    out.push_back(std::move(t));
  };
  auto weight = [&](std::string name, std::vector<int64_t> shape, float std_dev) {
    add(std::move(name), std::move(shape), 0.0f, std_dev);
  };
  auto norm = [&](std::string name, int64_t size) { add(std::move(name), {size}, 1.0f, 0.1f); };
  const bool qkv_bias = info.options.qkv_bias == layers::Bias::kRequired;
  const bool o_bias = info.options.o_bias == layers::Bias::kRequired;

  weight("model.embed_tokens.weight", {c.vocab_size, h}, 0.1f);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    norm(p + "input_layernorm.weight", h);
    for (auto [proj, rows] : {std::pair<const char*, int64_t>{"q_proj", c.num_heads * d},
                              {"k_proj", c.num_kv_heads * d},
                              {"v_proj", c.num_kv_heads * d}}) {
      weight(absl::StrCat(p, "self_attn.", proj, ".weight"), {rows, h}, 0.25f * scale);
      if (qkv_bias) weight(absl::StrCat(p, "self_attn.", proj, ".bias"), {rows}, 0.5f);
    }
    weight(p + "self_attn.o_proj.weight", {h, c.num_heads * d}, 0.25f * scale);
    if (o_bias) weight(p + "self_attn.o_proj.bias", {h}, 0.5f);
    if (info.options.qk_norm) {
      norm(p + "self_attn.q_norm.weight", d);
      norm(p + "self_attn.k_norm.weight", d);
    }
    norm(p + "post_attention_layernorm.weight", h);
    weight(p + "mlp.gate_proj.weight", {inter, h}, 0.2f * scale);
    weight(p + "mlp.up_proj.weight", {inter, h}, 0.2f * scale);
    weight(p + "mlp.down_proj.weight", {h, inter}, 0.2f * scale);
  }
  norm("model.norm.weight", h);
  if (!c.tie_word_embeddings) weight("lm_head.weight", {c.vocab_size, h}, 0.1f);
  return out;
}

absl::StatusOr<std::unique_ptr<WeightStore>> RandomWeightStore(const ModelInfo& info, uint64_t seed, DType dtype) {
  if (dtype == DType::kF16) return absl::InvalidArgumentError("random weights are float32 or bfloat16, not F16");
  std::vector<OwnedTensor> owned;
  std::vector<float> values;
  // Start-up compares these bytes with the host's memory first
  // (server/engine/engine_setup.cc); a failed allocation is still an error,
  // never the end of the process.
  try {
    for (TensorToWrite& t : RandomModelTensors(info, seed, dtype)) {
      const auto n = static_cast<size_t>(t.numel());
      OwnedTensor o{t.name, dtype, t.shape, std::vector<std::byte>(n * DTypeSize(dtype))};
      if (dtype == DType::kF32) {
        t.fill(reinterpret_cast<float*>(o.bytes.data()));
      } else {
        values.resize(n);
        t.fill(values.data());
        auto* bits = reinterpret_cast<uint16_t*>(o.bytes.data());
        for (size_t i = 0; i < n; ++i) bits[i] = FloatToBF16Bits(values[i]);
      }
      owned.push_back(std::move(o));
    }
  } catch (const std::exception& e) {  // bad_alloc, or length_error past max_size
    return absl::ResourceExhaustedError(
        absl::StrCat("--load-format dummy: out of memory generating the weights (", e.what(), ")"));
  }
  return WeightStore::FromMemory("random weights (--load-format dummy)", std::move(owned));
}

}  // namespace kaon
