// Model directory files, read at start-up from whatever directory the
// operator points `kaon serve` at: every loader must end in a one-line
// error, never a crash, on a corrupt or hostile file.
//
// Input: byte 0 picks the file (mod 6), the rest is its content:
//   0 model.safetensors            -> WeightStore::Open (header + data checks)
//   1 config.json                  -> LoadModelInfo (ParseCommonConfig, the
//                                     family's checks, generation_config.json)
//   2 generation_config.json       -> LoadModelInfo with stories260k's config
//   3 tokenizer.json               -> Tokenizer::FromJsonString
//   4 tokenizer_config.json        -> ParseTokenizerConfig and
//                                     ChatTemplate::FromModelDir
//   5 model.safetensors.index.json -> WeightStore::Open over tiny-qwen2-sharded's shards
// The safetensors and model-directory loaders only take paths, so the content
// is written to a per-process directory under /tmp (a few files in the page
// cache: cheap next to the parse). tokenizer.json has an in-memory entry point.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "models/registry.h"
#include "models/rope_frequencies.h"
#include "server/common/bounded_json.h"
#include "server/common/utf8.h"
#include "server/loading/model_config.h"
#include "server/loading/safetensors.h"
#include "server/template/chat_template.h"
#include "server/template/limits.h"
#include "server/tokenizer/tokenizer.h"
#include "server/tokenizer/tokenizer_config.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace fs = std::filesystem;

struct Dirs {
  std::string root, safetensors, config, generation, tokenizer_config, index;
};

void WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) kaon::fuzz::SetupFailed("cannot write " + path);
}

void CopyFrom(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) kaon::fuzz::SetupFailed("cannot copy " + from + ": " + ec.message());
}

const Dirs& GetDirs() {
  static const Dirs* dirs = [] {
    char tmpl[] = "/tmp/kaon-fuzz-model-files.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) kaon::fuzz::SetupFailed("mkdtemp failed");
    auto* d = new Dirs;
    d->root = tmpl;
    std::atexit([] { std::error_code ec; fs::remove_all(GetDirs().root, ec); });
    const std::string src = kaon::fuzz::SourceDir();
    const std::string stories = src + "/models/stories260k";
    for (auto [sub, out] : {std::pair{"st", &d->safetensors}, std::pair{"cfg", &d->config},
                            std::pair{"gen", &d->generation}, std::pair{"tc", &d->tokenizer_config},
                            std::pair{"idx", &d->index}}) {
      *out = d->root + "/" + sub;
      fs::create_directory(*out);
    }
    // The fixed partner of each fuzzed file.
    CopyFrom(stories + "/generation_config.json", d->config + "/generation_config.json");
    CopyFrom(stories + "/config.json", d->generation + "/config.json");
    CopyFrom(stories + "/tokenizer.json", d->tokenizer_config + "/tokenizer.json");
    const std::string sharded = src + "/tests/data/models/tiny-qwen2-sharded";
    for (const char* shard : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
      fs::create_symlink(sharded + "/" + shard, d->index + "/" + shard);
    }
    return d;
  }();
  return *dirs;
}

// Every tensor handed out must describe its bytes (safetensors.h: "every
// TensorView it hands out points inside the mapping with a size that matches
// dtype x shape"); converting its first and last elements reads both ends.
void CheckStore(const kaon::WeightStore& store) {
  for (const std::string& name : store.Names()) {
    auto t = store.Get(name);
    KAON_FUZZ_CHECK(t.ok());
    const int64_t n = t->numel();
    KAON_FUZZ_CHECK(n >= 0);
    KAON_FUZZ_CHECK(t->nbytes == static_cast<size_t>(n) * kaon::DTypeSize(t->dtype));
    if (n == 0) continue;
    float v = 0;
    kaon::ConvertToF32(*t, 0, 1, &v);
    kaon::ConvertToF32(*t, static_cast<size_t>(n - 1), 1, &v);
  }
}

// ParseCommonConfig bounds everything start-up sizes from (model_config.h).
void CheckInfo(const kaon::ModelInfo& info) {
  using L = kaon::ConfigLimits;
  const kaon::ModelConfig& c = info.config;
  KAON_FUZZ_CHECK(c.vocab_size >= 1 && c.vocab_size <= L::kMaxVocabSize);
  KAON_FUZZ_CHECK(c.hidden_size >= 1 && c.hidden_size <= L::kMaxHiddenSize);
  KAON_FUZZ_CHECK(c.intermediate_size >= 1 && c.intermediate_size <= L::kMaxIntermediateSize);
  KAON_FUZZ_CHECK(c.num_layers >= 1 && c.num_layers <= L::kMaxLayers);
  KAON_FUZZ_CHECK(c.num_heads >= 1 && c.num_heads <= L::kMaxHeads);
  KAON_FUZZ_CHECK(c.num_kv_heads >= 1 && c.num_heads % c.num_kv_heads == 0);
  KAON_FUZZ_CHECK(c.head_dim >= 2 && c.head_dim % 2 == 0 && c.head_dim <= L::kMaxHeadDim);
  KAON_FUZZ_CHECK(c.num_heads * c.head_dim <= L::kMaxHiddenSize);
  KAON_FUZZ_CHECK(c.max_position_embeddings >= 1 && c.max_position_embeddings <= L::kMaxPositionEmbeddings);
  KAON_FUZZ_CHECK(c.rms_norm_eps > 0 && std::isfinite(c.rms_norm_eps));
  KAON_FUZZ_CHECK(kaon::ComputeRopeInvFreq(c).size() == static_cast<size_t>(c.head_dim / 2));
}

void CheckTokenizer(const kaon::Tokenizer& tok) {
  for (const char* text : {"Once upon a time", "héllo <s> wörld 👋\n\t"}) {
    const auto ids = tok.Encode(text, /*add_special_tokens=*/true);
    for (int32_t id : ids) KAON_FUZZ_CHECK(id >= 0 && id < tok.VocabSize());
    KAON_FUZZ_CHECK(kaon::utf8::IsValid(tok.Decode(ids, /*skip_special_tokens=*/false)));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Dirs& d = GetDirs();
  if (size == 0) return 0;
  const std::string_view content(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0: {
      WriteFile(d.safetensors + "/model.safetensors", content);
      auto store = kaon::WeightStore::Open(d.safetensors);
      if (store.ok()) CheckStore(**store);
      break;
    }
    case 1:
    case 2: {
      const std::string& dir = data[0] % 6 == 1 ? d.config : d.generation;
      WriteFile(dir + (data[0] % 6 == 1 ? "/config.json" : "/generation_config.json"), content);
      auto info = kaon::LoadModelInfo(dir);
      if (info.ok()) CheckInfo(*info);
      break;
    }
    case 3: {
      auto tok = kaon::Tokenizer::FromJsonString(std::string(content), "tokenizer.json");
      if (tok.ok()) CheckTokenizer(**tok);
      break;
    }
    case 4: {
      // The tokenizer's reading of it, in memory: Tokenizer::FromModelDir
      // would rebuild the whole tokenizer.json per input (a quarter of the
      // run's time for this one route).
      kaon::BoundedJsonResult j = kaon::ParseJsonBounded(content, kaon::JsonLimits{});
      if (j.ok()) (void)kaon::ParseTokenizerConfig(j.value, "tokenizer_config.json");
      WriteFile(d.tokenizer_config + "/tokenizer_config.json", content);
      auto tmpl = kaon::ChatTemplate::FromModelDir(d.tokenizer_config);
      if (tmpl.ok()) {
        // A fuzzed template can loop until its budget: keep that short
        // (the jinja target fuzzes the interpreter itself).
        kaon::jinja::Limits limits;
        limits.max_render_time = std::chrono::milliseconds(5);
        (*tmpl)->SetLimits(limits);
        kaon::ChatTemplateInputs in;
        in.messages = nlohmann::ordered_json::parse(R"([{"role": "user", "content": "Hi"}])");
        in.add_generation_prompt = true;
        in.now_unix_seconds = 1722000000;
        (void)(*tmpl)->Render(in);
      }
      break;
    }
    case 5: {
      WriteFile(d.index + "/model.safetensors.index.json", content);
      auto store = kaon::WeightStore::Open(d.index);
      if (store.ok()) CheckStore(**store);
      break;
    }
  }
  return 0;
}
