#include "server/backend/memory_plan.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace kaon {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

double GiB(int64_t bytes) { return static_cast<double>(bytes) / (1 << 30); }

// The first line of a small kernel file, without the newline.
std::optional<std::string> FirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

std::optional<int64_t> ParseCount(const std::string& s) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(s, &v) || v < 0) return std::nullopt;
  return v;
}

// MemAvailable from meminfo, in bytes.
std::optional<int64_t> MemAvailable(const std::string& proc_dir) {
  std::ifstream in(proc_dir + "/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream fields(line.substr(13));
    int64_t kib = 0;
    std::string unit;
    if (!(fields >> kib >> unit) || kib < 0 || unit != "kB") return std::nullopt;
    return SatMul(kib, 1024);
  }
  return std::nullopt;
}

// The tightest memory limit of a cgroup and its ancestors: `root` + `path`,
// its parent, …, up to `root` itself. `file` is memory.max (v2) or
// memory.limit_in_bytes (v1).
void TightestLimit(const std::string& root, std::string path, const std::string& file, HostMemory* best) {
  while (true) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    const std::string at = (path == "/" ? root : root + path) + "/" + file;
    if (std::optional<std::string> text = FirstLine(at); text && *text != "max") {
      // cgroup v1 writes "no limit" as a huge page-aligned number.
      if (std::optional<int64_t> v = ParseCount(*text); v && *v < (int64_t{1} << 62) && *v < best->available_bytes) {
        best->available_bytes = *v;
        best->source = absl::StrCat("cgroup limit ", at);
      }
    }
    if (path.empty() || path == "/") return;
    const size_t slash = path.rfind('/');
    path = slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
  }
}

}  // namespace

int64_t SatMul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return kInt64Max;
  return r;
}

int64_t SatAdd(int64_t a, int64_t b) {
  int64_t r = 0;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r)) return kInt64Max;
  return r;
}

std::string FormatBytes(int64_t bytes) {
  if (bytes == kInt64Max) return "more than 8 EiB";
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  double v = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (v >= 1024 && unit + 1 < 6) {
    v /= 1024;
    ++unit;
  }
  // The precision as an argument: Clang checks absl format strings at compile
  // time and refuses one chosen at run time.
  const int decimals = v < 10 ? 2 : v < 100 ? 1 : 0;
  return absl::StrFormat("%.*f %s", decimals, v, kUnits[unit]);
}

int64_t DTypeBytes(const std::string& dtype) {
  if (dtype == "float32") return 4;
  if (dtype == "bfloat16" || dtype == "float16") return 2;
  return 0;
}

int64_t ActivationBytes(const ModelConfig& c, int64_t max_tokens, int64_t max_logits, int64_t act_bytes) {
  // Config sizes are range-checked (ModelConfig's limits), so these sums fit;
  // the flag-sized factors saturate.
  const int64_t qkv = (c.num_heads + 2 * c.num_kv_heads) * c.head_dim;
  const int64_t per_token = 2 * c.hidden_size            // hidden + residual
                            + qkv                        // fused q|k|v
                            + c.num_heads * c.head_dim   // attention output
                            + 3 * c.intermediate_size;   // gate|up and the activation
  // The gathered rows and their logits, in the activation dtype too (a
  // device sampler converts rows to fp32 in its own scratch).
  return SatAdd(SatMul(SatMul(max_tokens, per_token), act_bytes),
                SatMul(max_logits, (c.hidden_size + c.vocab_size) * act_bytes));
}

int64_t KvBytesPerBlock(const ModelConfig& c, int64_t block_size, int64_t kv_bytes) {
  return SatMul(SatMul(SatMul(2 * c.num_layers, block_size), SatMul(c.num_kv_heads, c.head_dim)), kv_bytes);
}

absl::StatusOr<MemoryPlan> PlanKvCache(const MemoryPlanInput& in) {
  if (!(in.gpu_memory_utilization > 0.0 && in.gpu_memory_utilization <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--gpu-memory-utilization must be in (0, 1], got %g", in.gpu_memory_utilization));
  }
  if (in.total_bytes <= 0 || in.bytes_per_block <= 0 || in.block_size <= 0 || in.max_model_len <= 0) {
    return absl::InvalidArgumentError("memory plan: sizes must be positive");
  }
  const int64_t budget = static_cast<int64_t>(std::floor(static_cast<double>(in.total_bytes) *
                                                         in.gpu_memory_utilization));
  const int64_t fixed = SatAdd(SatAdd(in.weight_bytes, in.activation_bytes), in.reserved_bytes);
  const int64_t kv_budget = budget - fixed;
  const int64_t blocks_per_seq = (in.max_model_len + in.block_size - 1) / in.block_size;
  MemoryPlan plan;
  plan.num_blocks = kv_budget > 0 ? kv_budget / in.bytes_per_block : 0;
  if (plan.num_blocks < 1) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "no memory left for the KV cache: %.2f GiB usable (--gpu-memory-utilization %g of %.2f GiB) but weights "
        "take %.2f GiB and activations %.2f GiB; raise --gpu-memory-utilization or lower "
        "--max-num-batched-tokens",
        GiB(budget), in.gpu_memory_utilization, GiB(in.total_bytes), GiB(in.weight_bytes),
        GiB(SatAdd(in.activation_bytes, in.reserved_bytes))));
  }
  plan.kv_bytes = plan.num_blocks * in.bytes_per_block;
  const int64_t cache_tokens = plan.num_blocks * in.block_size;
  if (plan.num_blocks < blocks_per_seq) {
    if (in.max_model_len_from_flag) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "--max-model-len %d needs %d KV blocks but only %d fit (%.2f GiB); lower --max-model-len or raise "
          "--gpu-memory-utilization",
          in.max_model_len, blocks_per_seq, plan.num_blocks, GiB(plan.kv_bytes)));
    }
    plan.max_model_len = cache_tokens;
  } else {
    plan.max_model_len = in.max_model_len;
  }
  plan.summary = absl::StrFormat(
      "memory: %.2f GiB usable of %.2f GiB; weights %.2f GiB, activations %.2f GiB, reserve %.2f GiB, KV cache "
      "%.2f GiB = %d blocks of %d tokens (%d tokens, max_model_len %d)",
      GiB(budget), GiB(in.total_bytes), GiB(in.weight_bytes), GiB(in.activation_bytes), GiB(in.reserved_bytes),
      GiB(plan.kv_bytes), plan.num_blocks, in.block_size, cache_tokens, plan.max_model_len);
  return plan;
}

absl::StatusOr<HostMemory> ReadHostMemory(const std::string& proc_dir, const std::string& cgroup_root) {
  HostMemory m;
  if (std::optional<int64_t> avail = MemAvailable(proc_dir)) {
    m.available_bytes = *avail;
    m.source = "MemAvailable";
  } else {
    // No figure to compare with (not Linux, or /proc hidden): nothing is
    // refused on a guess.
    m.available_bytes = kInt64Max;
    m.source = absl::StrCat("no MemAvailable in ", proc_dir, "/meminfo");
  }
  std::ifstream in(proc_dir + "/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    // "ID:controllers:path"; v2 is "0::path", v1 lists its controllers.
    std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3 || f[2].empty() || f[2][0] != '/') continue;
    if (f[0] == "0" && f[1].empty()) {
      TightestLimit(cgroup_root, f[2], "memory.max", &m);
      continue;
    }
    for (absl::string_view controller : absl::StrSplit(f[1], ',')) {
      if (controller == "memory") TightestLimit(cgroup_root + "/memory", f[2], "memory.limit_in_bytes", &m);
    }
  }
  return m;
}

absl::Status CheckHostMemory(const HostMemoryNeed& need, const HostMemory& available, const std::string& prefix,
                             const std::string& hint) {
  int64_t total = 0;
  std::vector<std::string> parts;
  for (const HostMemoryNeed::Part& p : need.parts) {
    if (p.bytes <= 0) continue;
    total = SatAdd(total, p.bytes);
    parts.push_back(absl::StrCat(FormatBytes(p.bytes), " for ", p.what, p.why.empty() ? "" : " (", p.why,
                                 p.why.empty() ? "" : ")"));
  }
  if (total <= available.available_bytes) return absl::OkStatus();
  std::string list;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) list += i + 1 == parts.size() ? " and " : ", ";
    list += parts[i];
  }
  return absl::ResourceExhaustedError(absl::StrCat(prefix, ": the model needs ", list, " (", FormatBytes(total),
                                                   " in all) but only ", FormatBytes(available.available_bytes),
                                                   " are available (", available.source, ")",
                                                   hint.empty() ? "" : "; ", hint));
}

}  // namespace kaon
