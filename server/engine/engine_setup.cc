#include "server/engine/engine_setup.h"

#include <algorithm>
#include <limits>
#include <thread>

#include "absl/strings/str_cat.h"
#include "models/random_weights.h"
#include "server/common/status.h"
#include "server/backend/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_isa.h"
#include "server/engine/device.h"
#include "server/backend/memory_plan.h"

namespace kaon {
namespace {

// Default KV budget when --num-kv-blocks is not given: room for max_num_seqs
// full contexts, but no more than this many bytes (and never less than one
// full context).
constexpr int64_t kDefaultKvBytes = int64_t{512} << 20;

// Left out of a device plan for what it does not model: cuBLAS workspaces,
// the logits staging buffers, allocator slack.
constexpr int64_t kDeviceReserveBytes = int64_t{1} << 30;

// More CPU worker threads than this is a typo, not a machine.
constexpr int kMaxThreads = 4096;

// Block ids are int32 throughout the engine.
constexpr int64_t kMaxKvBlocks = std::numeric_limits<int32_t>::max();

// Elements of every tensor the loader reads.
struct WeightElems {
  int64_t total = 0;
  int64_t matrices = 0;  // of 2-D tensors: what the CPU holds as bf16 under --dtype bfloat16
};
WeightElems CountWeights(const ModelInfo& info) {
  WeightElems w;
  // The recipe lists every tensor the loader reads; fill is lazy, so this
  // allocates nothing. Config sizes are range-checked, so each numel fits.
  for (const TensorToWrite& t : RandomModelTensors(info, 0, DType::kF32)) {
    w.total = SatAdd(w.total, t.numel());
    if (t.shape.size() == 2) w.matrices = SatAdd(w.matrices, t.numel());
  }
  return w;
}

// The largest GEMM input the decoder feeds a CPU backend: a step's tokens
// (or the LM head's logits rows) × the widest in-features (hidden, the
// attention output, the MLP's intermediate).
int64_t MaxGemmInput(const ModelInfo& info, const Capacity& cap) {
  const ModelConfig& c = info.config;
  const int64_t rows = std::max(cap.max_num_batched_tokens, cap.max_logit_rows());
  return SatMul(rows, std::max({c.hidden_size, c.num_heads * c.head_dim, c.intermediate_size}));
}

// Weights as the device will hold them: the loader's tensors at `elem_bytes`.
int64_t WeightBytes(const ModelInfo& info, int64_t elem_bytes) { return SatMul(CountWeights(info).total, elem_bytes); }

// What the CPU backend (or a device loader's host staging) will allocate,
// against what the host has, before any of it is allocated.
absl::Status CheckHostFits(const std::string& model_dir, const ModelInfo& info, const EngineOptions& o,
                           const std::string& device, int64_t num_blocks, int64_t max_seq_len,
                           int64_t max_logits) {
  const ModelConfig& c = info.config;
  const WeightElems w = CountWeights(info);
  const std::string shape = absl::StrCat("config.json: hidden_size ", c.hidden_size, ", intermediate_size ",
                                         c.intermediate_size, ", num_hidden_layers ", c.num_layers,
                                         ", vocab_size ", c.vocab_size);
  HostMemoryNeed need;
  if (device == "cpu") {
    Capacity cap;
    cap.max_num_batched_tokens = o.max_num_batched_tokens;
    cap.max_num_seqs = o.max_num_seqs;
    cap.max_model_len = max_seq_len;
    cap.block_size = o.block_size;
    cap.num_kv_blocks = num_blocks;
    cap.max_prompt_logprob_rows = max_logits - o.max_num_seqs;
    const bool bf16 = o.dtype == "bfloat16";
    const BackendPlan plan = PlanCpuBackend(info, cap, o.num_threads, bf16);
    need.parts.push_back({"weights", plan.weights, absl::StrCat(bf16 ? "bf16 matrices; " : "fp32; ", shape)});
    if (o.dummy_weights) {
      need.parts.push_back({"generated weights", SatMul(w.total, 4), "--load-format dummy, held while loading"});
    }
    // What sized the cache, so the message names what to change.
    std::string sized_by = absl::StrCat("room for a context of config.json's max_position_embeddings ",
                                        c.max_position_embeddings);
    if (o.num_kv_blocks > 0) {
      sized_by = absl::StrCat("--num-kv-blocks ", o.num_kv_blocks);
    } else if (o.max_model_len > 0) {
      sized_by = absl::StrCat("room for --max-model-len ", o.max_model_len);
    }
    need.parts.push_back({"KV cache", plan.kv_cache,
                          absl::StrCat(num_blocks, " blocks of ", o.block_size, " tokens, ", sized_by)});
    // The runner's persistent block table also scales with the context.
    const int64_t table = SatMul(SatMul(o.max_num_seqs, cap.max_blocks_per_seq()), sizeof(int32_t));
    need.parts.push_back({"activations, RoPE tables and scratch", SatAdd(plan.workspace, table),
                          absl::StrCat("--max-num-batched-tokens ", o.max_num_batched_tokens, ", --max-num-seqs ",
                                       o.max_num_seqs, ", context ", max_seq_len)});
  } else if (o.dummy_weights) {
    // The device loader generates the whole checkpoint on the host first.
    const int64_t elem = o.dtype == "float32" ? 4 : 2;
    need.parts.push_back({"generated weights", SatMul(w.total, elem),
                          absl::StrCat("--load-format dummy on the host before upload; ", shape)});
  } else {
    return absl::OkStatus();  // weights stream from the mapped files one tensor at a time
  }
  HostMemory host;
  if (o.host_memory) {
    KAON_ASSIGN_OR_RETURN(host, o.host_memory());
  } else {
    KAON_ASSIGN_OR_RETURN(host, ReadHostMemory());
  }
  return CheckHostMemory(need, host, model_dir,
                         "lower --max-model-len, --num-kv-blocks or --max-num-batched-tokens, or use a smaller model");
}

}  // namespace

BackendPlan PlanCpuBackend(const ModelInfo& info, const Capacity& cap, int num_threads, bool bf16_weights) {
  const ModelConfig& c = info.config;
  BackendPlan plan;
  // What the decoder loads (a tied head shares the embedding): fp32, or bf16
  // matrices with fp32 vectors.
  const WeightElems w = CountWeights(info);
  plan.weights = bf16_weights ? SatAdd(SatMul(w.matrices, 2), SatMul(w.total - w.matrices, sizeof(float)))
                              : SatMul(w.total, sizeof(float));
  plan.kv_cache = SatMul(cap.num_kv_blocks, KvBytesPerBlock(c, cap.block_size, sizeof(float)));
  CpuBackendOptions o;
  o.num_threads = num_threads;
  o.vocab_size = c.vocab_size;
  o.max_model_len = cap.max_model_len;
  o.bf16_weights = bf16_weights;
  o.max_gemm_input = MaxGemmInput(info, cap);
  // The decoder's activations, the RoPE cos/sin tables and the backend's own
  // scratch (attention, sampler).
  int64_t work = ActivationBytes(c, cap.max_num_batched_tokens, cap.max_logit_rows(), sizeof(float));
  work = SatAdd(work, SatMul(SatMul(cap.max_model_len, c.head_dim), sizeof(float)));
  plan.workspace = SatAdd(work, CpuBackend::FixedBytes(o));
  return plan;
}

BackendPlan PlanDeviceBackend(const ModelInfo& info, const Capacity& cap, const std::string& dtype,
                              int64_t fixed_bytes) {
  const ModelConfig& c = info.config;
  const int64_t elem = DTypeBytes(dtype);
  BackendPlan plan;
  plan.weights = WeightBytes(info, elem);
  plan.kv_cache = SatMul(cap.num_kv_blocks, KvBytesPerBlock(c, cap.block_size, elem));
  plan.workspace = SatAdd(ActivationBytes(c, cap.max_num_batched_tokens, cap.max_logit_rows(), elem), fixed_bytes);
  return plan;
}

absl::StatusOr<MemoryPlan> PlanDeviceKvCache(const ModelInfo& info, const EngineOptions& o, const std::string& dtype,
                                             int64_t free_bytes, int64_t total_bytes, int64_t max_logits,
                                             int64_t fixed_bytes) {
  const ModelConfig& c = info.config;
  const int64_t elem = DTypeBytes(dtype);
  if (o.gpu_memory_utilization > 0 && o.gpu_memory_utilization <= 1 &&
      static_cast<double>(total_bytes) * o.gpu_memory_utilization > static_cast<double>(free_bytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "--gpu-memory-utilization ", o.gpu_memory_utilization, " asks for ",
        static_cast<double>(total_bytes) * o.gpu_memory_utilization / (1 << 30), " GiB but only ",
        static_cast<double>(free_bytes) / (1 << 30), " GiB of the device's ",
        static_cast<double>(total_bytes) / (1 << 30), " GiB are free (another process holds the rest); lower it"));
  }
  MemoryPlanInput in;
  in.total_bytes = total_bytes;
  in.gpu_memory_utilization = o.gpu_memory_utilization;
  in.weight_bytes = WeightBytes(info, elem);
  in.activation_bytes = ActivationBytes(c, o.max_num_batched_tokens, max_logits, elem);
  // The backend's own buffers are counted; the reserve is what is not
  // (the CUDA context, cuBLAS's internals, fragmentation).
  in.reserved_bytes = SatAdd(kDeviceReserveBytes, fixed_bytes);
  in.bytes_per_block = KvBytesPerBlock(c, o.block_size, elem);
  in.block_size = o.block_size;
  in.max_model_len = o.max_model_len > 0 ? o.max_model_len : c.max_position_embeddings;
  in.max_model_len_from_flag = o.max_model_len > 0;
  return PlanKvCache(in);
}

absl::Status ValidateEngineOptions(const EngineOptions& o, const ModelConfig& config) {
  if (o.max_model_len < 0) return absl::InvalidArgumentError("--max-model-len must be positive");
  if (o.max_model_len > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat("--max-model-len ", o.max_model_len,
                                                   " exceeds the model's max_position_embeddings ",
                                                   config.max_position_embeddings));
  }
  if (o.max_num_batched_tokens <= 0) return absl::InvalidArgumentError("--max-num-batched-tokens must be positive");
  if (o.max_num_seqs <= 0) return absl::InvalidArgumentError("--max-num-seqs must be positive");
  if (o.block_size <= 0 || o.block_size > 1024) {
    return absl::InvalidArgumentError("--block-size must be between 1 and 1024");
  }
  if (o.num_kv_blocks < 0) return absl::InvalidArgumentError("--num-kv-blocks must be positive");
  if (o.num_kv_blocks > kMaxKvBlocks) {
    return absl::InvalidArgumentError(absl::StrCat("--num-kv-blocks must be at most ", kMaxKvBlocks));
  }
  if (o.num_threads < 0) return absl::InvalidArgumentError("--threads must be positive");
  if (o.num_threads > kMaxThreads) {
    return absl::InvalidArgumentError(absl::StrCat("--threads must be at most ", kMaxThreads));
  }
  kernels::cpu::CpuIsa isa;
  std::string isa_error;
  if (!kernels::cpu::ResolveCpuIsa(o.cpu_isa, kernels::cpu::DetectCpuIsaSupport(), &isa, &isa_error)) {
    return absl::InvalidArgumentError(isa_error);
  }
  if (o.tensor_parallel_size != 1) {
    return absl::UnimplementedError(absl::StrCat("--tensor-parallel-size ", o.tensor_parallel_size,
                                                 ": only 1 is supported yet (multi-GPU serving is not built)"));
  }
  if (!(o.gpu_memory_utilization > 0 && o.gpu_memory_utilization <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("--gpu-memory-utilization must be in (0, 1], got ", o.gpu_memory_utilization));
  }
  return absl::OkStatus();
}

absl::StatusOr<EngineParts> LoadEngineParts(const std::string& model_dir, const EngineOptions& given) {
  EngineParts p;
  EngineOptions options = given;
  std::function<absl::Status(int64_t*, int64_t*)> memory_info;
  std::function<int64_t(const ModelInfo&, const Capacity&)> fixed_bytes;
  if (options.model_loader) {
    p.device = "injected";  // a test's or the GPU check's loader
  } else {
    KAON_ASSIGN_OR_RETURN(DeviceChoice d, ConfigureDevice(&options));
    p.device = d.device;
    p.dtype = d.dtype;
    p.device_reason = d.reason;
    memory_info = d.memory_info;
    fixed_bytes = d.fixed_bytes;
  }
  KAON_ASSIGN_OR_RETURN(p.info, LoadModelInfo(model_dir));
  const ModelConfig& c = p.info.config;
  KAON_RETURN_IF_ERROR(ValidateEngineOptions(options, c));

  const int64_t context = options.max_model_len > 0 ? options.max_model_len : c.max_position_embeddings;
  const int64_t blocks_per_seq = (context + options.block_size - 1) / options.block_size;
  // Prompt logprobs need a logits row per prompt token; a bounded number per
  // step keeps the logits buffer small for large vocabularies (the scheduler
  // spreads the rest over later steps).
  constexpr int64_t kPromptLogitsBytes = int64_t{64} << 20;
  const int64_t max_prompt_logits =
      std::clamp<int64_t>(kPromptLogitsBytes / (4 * c.vocab_size), 1, options.max_num_batched_tokens);
  int64_t num_blocks = options.num_kv_blocks;
  if (num_blocks == 0 && memory_info) {
    // A device: what is left of --gpu-memory-utilization after weights and
    // activations becomes KV cache, as vLLM plans it.
    int64_t free_bytes = 0, total_bytes = 0;
    KAON_RETURN_IF_ERROR(memory_info(&free_bytes, &total_bytes));
    // The backend's buffers sized for the longest context asked for (the
    // plan may only shorten it).
    Capacity longest;
    longest.max_num_batched_tokens = options.max_num_batched_tokens;
    longest.max_num_seqs = options.max_num_seqs;
    longest.max_model_len = context;
    longest.block_size = options.block_size;
    longest.max_prompt_logprob_rows = max_prompt_logits;
    const int64_t fixed = fixed_bytes ? fixed_bytes(p.info, longest) : 0;
    KAON_ASSIGN_OR_RETURN(MemoryPlan plan, PlanDeviceKvCache(p.info, options, p.dtype, free_bytes, total_bytes,
                                                             options.max_num_seqs + max_prompt_logits, fixed));
    num_blocks = plan.num_blocks;
    p.memory_summary = plan.summary;
  } else if (num_blocks == 0) {
    const int64_t by_bytes = kDefaultKvBytes / KvBytesPerBlock(c, options.block_size, sizeof(float));
    num_blocks = std::max(blocks_per_seq, std::min(SatMul(options.max_num_seqs, blocks_per_seq), by_bytes));
  }
  // The auto size holds at least one context of at most 2^28 tokens, so it
  // stays within the int32 block ids; the flag is checked in Validate.

  Capacity& cap = p.capacity;
  // An explicit --max-model-len must fit the cache; the default shrinks to it.
  const int64_t cache_tokens = SatMul(num_blocks, options.block_size);
  if (options.max_model_len > cache_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("--max-model-len ", options.max_model_len,
                                                   " does not fit the KV cache (", num_blocks, " blocks of ",
                                                   options.block_size, " tokens); raise --num-kv-blocks"));
  }
  cap.max_model_len = std::min(context, cache_tokens);
  cap.max_num_batched_tokens = options.max_num_batched_tokens;
  cap.max_num_seqs = options.max_num_seqs;
  cap.block_size = options.block_size;
  cap.num_kv_blocks = num_blocks;
  cap.max_prompt_logprob_rows = max_prompt_logits;

  if (!options.model_loader || p.device == "cuda") {
    KAON_RETURN_IF_ERROR(CheckHostFits(model_dir, p.info, options, p.device, num_blocks, cap.max_model_len,
                                       cap.max_logit_rows()));
  }

  if (options.model_loader) {
    KAON_ASSIGN_OR_RETURN(p.model, options.model_loader(model_dir, p.info, cap));
    return p;
  }
  if (options.dummy_weights) {
    // Seed 0, fp32: the model `kaon random-model --seed 0` would write.
    KAON_ASSIGN_OR_RETURN(std::unique_ptr<WeightStore> store, RandomWeightStore(p.info, 0, DType::kF32));
    KAON_ASSIGN_OR_RETURN(p.model, LoadCpuModel(model_dir, p.info, cap, options.num_threads, store.get(),
                                                options.cpu_isa, p.dtype == "bfloat16"));
  } else {
    KAON_ASSIGN_OR_RETURN(p.model, LoadCpuModel(model_dir, p.info, cap, options.num_threads, nullptr,
                                                options.cpu_isa, p.dtype == "bfloat16"));
  }
  return p;
}

absl::StatusOr<std::unique_ptr<CausalLM>> LoadCpuModel(const std::string& model_dir, const ModelInfo& info,
                                                       const Capacity& capacity, int num_threads,
                                                       const WeightStore* store, const std::string& cpu_isa,
                                                       bool bf16_weights) {
  CpuBackendOptions cpu;
  cpu.bf16_weights = bf16_weights;
  cpu.num_threads = num_threads;
  cpu.isa = cpu_isa;
  cpu.vocab_size = info.config.vocab_size;
  cpu.max_model_len = capacity.max_model_len;
  cpu.max_gemm_input = MaxGemmInput(info, capacity);
  KAON_ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> backend, CpuBackend::Create(cpu));
  if (store != nullptr) return LoadModelFromStore(*store, info, capacity, std::move(backend));
  return LoadModel(model_dir, info, capacity, std::move(backend));
}

}  // namespace kaon
