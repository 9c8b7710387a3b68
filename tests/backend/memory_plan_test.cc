// Start-up memory planning and step-metadata packing: the host-side logic a
// device backend relies on, tested without a device.
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>

#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"
#include "server/backend/memory_plan.h"
#include "server/backend/step_metadata.h"

namespace kaon {
namespace {

// Llama-3-8B's shape.
ModelConfig Llama3_8B() {
  ModelConfig c;
  c.hidden_size = 4096;
  c.intermediate_size = 14336;
  c.num_layers = 32;
  c.num_heads = 32;
  c.num_kv_heads = 8;
  c.head_dim = 128;
  c.vocab_size = 128256;
  c.max_position_embeddings = 8192;
  return c;
}

constexpr int64_t kGiB = int64_t{1} << 30;

TEST(MemoryPlan, KvBytesMatchTheKnownFigure) {
  // 8B in bf16: 2 (K,V) * 32 layers * 8 kv heads * 128 dims * 2 bytes = 128 KiB per token.
  EXPECT_EQ(KvBytesPerBlock(Llama3_8B(), 16, 2), 16 * 128 * 1024);
  EXPECT_EQ(DTypeBytes("bfloat16"), 2);
  EXPECT_EQ(DTypeBytes("float32"), 4);
  EXPECT_EQ(DTypeBytes("int8"), 0);
}

TEST(MemoryPlan, ActivationBytesCountEveryBuffer) {
  ModelConfig c;
  c.hidden_size = 8;
  c.intermediate_size = 10;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 4;
  c.vocab_size = 100;
  // per token: 2*8 + (2+2)*4 + 2*4 + 3*10 = 70 elements; logits rows: 8 + 100*4 bytes.
  EXPECT_EQ(ActivationBytes(c, 3, 2, 2), 3 * 70 * 2 + 2 * (8 + 100) * 2);
}

TEST(MemoryPlan, H200ServesLlama3_8B) {
  const ModelConfig c = Llama3_8B();
  MemoryPlanInput in;
  in.total_bytes = 141 * kGiB;
  in.gpu_memory_utilization = 0.9;
  in.weight_bytes = 16 * kGiB;
  in.activation_bytes = ActivationBytes(c, 8192, 512, 2);
  in.reserved_bytes = kGiB;
  in.bytes_per_block = KvBytesPerBlock(c, 16, 2);
  in.block_size = 16;
  in.max_model_len = 8192;
  auto plan = PlanKvCache(in);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const int64_t budget = static_cast<int64_t>(141 * kGiB * 0.9);
  EXPECT_EQ(plan->num_blocks, (budget - in.weight_bytes - in.activation_bytes - in.reserved_bytes) / in.bytes_per_block);
  EXPECT_GT(plan->num_blocks * 16, 700000);  // ~0.8M tokens of KV
  EXPECT_EQ(plan->max_model_len, 8192);
  EXPECT_NE(plan->summary.find("blocks of 16 tokens"), std::string::npos);
}

TEST(MemoryPlan, ErrorsNameTheFlags) {
  MemoryPlanInput in;
  in.total_bytes = 10 * kGiB;
  in.weight_bytes = 8 * kGiB;
  in.bytes_per_block = 1 << 20;
  in.max_model_len = 4096;
  in.gpu_memory_utilization = 1.5;
  auto p = PlanKvCache(in);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("--gpu-memory-utilization"), std::string::npos);

  in.gpu_memory_utilization = 0.5;  // 5 GiB usable < 8 GiB of weights
  p = PlanKvCache(in);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(p.status().message().find("raise --gpu-memory-utilization"), std::string::npos) << p.status();

  // Room for 1 GiB of KV = 1024 blocks of 16 tokens = 16384 tokens.
  in.gpu_memory_utilization = 0.9;
  in.block_size = 16;
  in.max_model_len = 32768;
  p = PlanKvCache(in);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->max_model_len, p->num_blocks * 16);  // the config's length shrinks to fit
  in.max_model_len_from_flag = true;
  p = PlanKvCache(in);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("--max-model-len 32768"), std::string::npos) << p.status();
}

TEST(MemoryPlan, SaturatesInsteadOfOverflowing) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(SatMul(int64_t{1} << 40, int64_t{1} << 30), kMax);
  EXPECT_EQ(SatMul(3, 4), 12);
  EXPECT_EQ(SatAdd(kMax - 1, 2), kMax);
  EXPECT_EQ(SatAdd(kMax, 0), kMax);
  // Every config field at its bound: per-block KV bytes saturate, a full
  // context of them too, and the plan refuses instead of wrapping negative.
  ModelConfig c;
  c.num_layers = ConfigLimits::kMaxLayers;
  c.num_heads = c.num_kv_heads = ConfigLimits::kMaxHeads;
  c.head_dim = ConfigLimits::kMaxHeadDim;
  c.hidden_size = ConfigLimits::kMaxHiddenSize;
  c.intermediate_size = ConfigLimits::kMaxIntermediateSize;
  c.vocab_size = ConfigLimits::kMaxVocabSize;
  const int64_t per_block = KvBytesPerBlock(c, 1024, 4);
  EXPECT_GT(per_block, 0);
  EXPECT_EQ(SatMul(per_block, ConfigLimits::kMaxPositionEmbeddings), kMax);
  EXPECT_EQ(ActivationBytes(c, kMax / 2, kMax / 2, 4), kMax);
  MemoryPlanInput in;
  in.total_bytes = 141 * kGiB;
  in.weight_bytes = kMax;
  in.activation_bytes = kMax;
  in.reserved_bytes = kGiB;
  in.bytes_per_block = per_block;
  in.max_model_len = ConfigLimits::kMaxPositionEmbeddings;
  auto plan = PlanKvCache(in);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted) << plan.status();
}

TEST(MemoryPlan, FormatsBytes) {
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(1536), "1.50 KiB");
  EXPECT_EQ(FormatBytes(20 * kGiB), "20.0 GiB");
  EXPECT_EQ(FormatBytes(int64_t{1} << 40), "1.00 TiB");
  EXPECT_EQ(FormatBytes(std::numeric_limits<int64_t>::max()), "more than 8 EiB");
}

// A fake /proc and /sys/fs/cgroup: ReadHostMemory takes the tightest of
// MemAvailable and every memory limit from the process's cgroup up.
class HostMemoryFiles : public ::testing::Test {
 protected:
  void Put(const std::string& rel, const std::string& content) {
    const std::filesystem::path p = dir_.path() / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << content;
  }
  std::string Proc() const { return (dir_.path() / "proc").string(); }
  std::string Cgroup() const { return (dir_.path() / "cgroup").string(); }
  testing::TempDir dir_;
};

TEST_F(HostMemoryFiles, MemAvailableWithoutALimit) {
  Put("proc/meminfo", "MemTotal:       32000000 kB\nMemFree:  100 kB\nMemAvailable:   20971520 kB\n");
  Put("proc/self/cgroup", "0::/user.slice/kaon.scope\n");
  Put("cgroup/user.slice/kaon.scope/memory.max", "max\n");
  auto m = ReadHostMemory(Proc(), Cgroup());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->available_bytes, 20 * kGiB);
  EXPECT_EQ(m->source, "MemAvailable");
}

TEST_F(HostMemoryFiles, TightestCgroupV2LimitOfTheAncestors) {
  Put("proc/meminfo", "MemAvailable:   20971520 kB\n");
  Put("proc/self/cgroup", "0::/a/b\n");
  Put("cgroup/a/b/memory.max", "max\n");
  Put("cgroup/a/memory.max", std::to_string(4 * kGiB) + "\n");
  Put("cgroup/memory.max", std::to_string(8 * kGiB) + "\n");
  auto m = ReadHostMemory(Proc(), Cgroup());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->available_bytes, 4 * kGiB);
  EXPECT_NE(m->source.find("cgroup/a/memory.max"), std::string::npos) << m->source;
  // A limit above MemAvailable does not count.
  Put("cgroup/a/memory.max", std::to_string(64 * kGiB) + "\n");
  Put("cgroup/memory.max", "max\n");
  m = ReadHostMemory(Proc(), Cgroup());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->available_bytes, 20 * kGiB);
  EXPECT_EQ(m->source, "MemAvailable");
}

TEST_F(HostMemoryFiles, CgroupV1LimitAndItsNoLimitValue) {
  Put("proc/meminfo", "MemAvailable:   20971520 kB\n");
  Put("proc/self/cgroup", "5:cpu,cpuacct:/x\n4:memory:/x/y\n0::/\n");
  Put("cgroup/memory/x/y/memory.limit_in_bytes", "9223372036854771712\n");  // v1's "no limit"
  Put("cgroup/memory/x/memory.limit_in_bytes", std::to_string(2 * kGiB) + "\n");
  auto m = ReadHostMemory(Proc(), Cgroup());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->available_bytes, 2 * kGiB);
  EXPECT_NE(m->source.find("memory.limit_in_bytes"), std::string::npos) << m->source;
}

TEST_F(HostMemoryFiles, NothingReadableRefusesNothing) {
  auto m = ReadHostMemory(Proc(), Cgroup());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->available_bytes, std::numeric_limits<int64_t>::max());
}

TEST(HostMemoryCheck, OneLineNamingEveryPartAndTheSource) {
  HostMemoryNeed need;
  need.parts.push_back({"weights", int64_t{3} << 40, "fp32; config.json: hidden_size 16384"});
  need.parts.push_back({"KV cache", 3 * kGiB, "2 blocks"});
  const HostMemory host{20 * kGiB, "MemAvailable"};
  const absl::Status s = CheckHostMemory(need, host, "/m", "lower --max-model-len");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(),
            "/m: the model needs 3.00 TiB for weights (fp32; config.json: hidden_size 16384) and 3.00 GiB for KV "
            "cache (2 blocks) (3.00 TiB in all) but only 20.0 GiB are available (MemAvailable); lower --max-model-len");
  // Exactly what is available fits.
  const HostMemory exact{(int64_t{3} << 40) + 3 * kGiB, "MemAvailable"};
  EXPECT_TRUE(CheckHostMemory(need, exact, "/m", "").ok());
}

TEST(StepMetadata, PacksOnlyWhatTheStepUsesAndViewsBack) {
  // 9 tokens, 3 sequences, 4 blocks per sequence (64 tokens of 16), 5 logits rows.
  Capacity cap{.max_num_batched_tokens = 9, .max_num_seqs = 3, .max_model_len = 64, .block_size = 16,
               .num_kv_blocks = 8, .max_prompt_logprob_rows = 2};
  const StepMetadataLayout layout(cap);
  EXPECT_EQ(layout.max_block_table_updates, 3 * 4);
  EXPECT_EQ(layout.total_bytes % 16, 0u);
  // Two sequences (table rows 2 and 0): a 3-token prefill chunk and a decode
  // that just got a second block.
  const int32_t ids[] = {5, 6, 7, 8};
  const int32_t pos[] = {0, 1, 2, 16};
  const int64_t slots[] = {40, 41, 42, 80};
  const int32_t qsl[] = {0, 3, 4};
  const int32_t lens[] = {3, 17};
  const int32_t table[] = {22, 5, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0};
  const int32_t rows[] = {2, 0};
  const int32_t logits[] = {2, 3};
  const int32_t updates[] = {8, 10, 1, 5};  // row 2 col 0 = 10, row 0 col 1 = 5
  ForwardBatch b;
  b.num_tokens = 4;
  b.token_ids = ids;
  b.positions = pos;
  b.slot_mapping = slots;
  b.attn = {qsl, lens, table, 2, 4, 17, rows};
  b.num_logits = 2;
  b.logits_indices = logits;
  b.num_block_table_updates = 2;
  b.block_table_updates = updates;

  std::vector<std::byte> buf(layout.total_bytes, std::byte{0xAB});
  auto packed = PackStepMetadata(b, layout, buf.data());
  ASSERT_TRUE(packed.ok()) << packed.status();
  for (size_t off : {packed->token_ids, packed->positions, packed->slot_mapping, packed->query_start_loc,
                     packed->seq_lens, packed->block_table_rows, packed->logits_indices,
                     packed->block_table_updates}) {
    EXPECT_EQ(off % 16, 0u);
  }
  // Sections padded to 16 bytes: 16 + 16 + 32 + 16 + 16 + 16 + 16 + 16; no table.
  EXPECT_EQ(packed->bytes, 144u);
  EXPECT_LT(packed->bytes, layout.total_bytes);

  const int32_t mirror[12] = {};
  const ForwardBatch v = DeviceView(b, *packed, buf.data(), mirror);
  EXPECT_EQ(v.num_tokens, 4);
  EXPECT_EQ(v.attn.max_seq_len, 17);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(v.token_ids[i], ids[i]);
    EXPECT_EQ(v.positions[i], pos[i]);
    EXPECT_EQ(v.slot_mapping[i], slots[i]);
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(v.attn.query_start_loc[i], qsl[i]);
  EXPECT_EQ(v.attn.block_table, mirror);
  EXPECT_EQ(v.attn.block_table_rows[0], 2);
  EXPECT_EQ(v.attn.seq_lens[1], 17);
  EXPECT_EQ(v.logits_indices[1], 3);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(v.block_table_updates[i], updates[i]);

  // "Whole table" steps pack no updates.
  b.num_block_table_updates = -1;
  auto whole = PackStepMetadata(b, layout, buf.data());
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->bytes, 128u);

  b.num_block_table_updates = 2;
  b.num_tokens = 10;  // over capacity
  EXPECT_FALSE(PackStepMetadata(b, layout, buf.data()).ok());
  b.num_tokens = 4;
  b.attn.max_blocks_per_seq = 5;  // a table of another width
  EXPECT_FALSE(PackStepMetadata(b, layout, buf.data()).ok());
  b.attn.max_blocks_per_seq = 4;
  b.attn.block_table_rows = nullptr;  // a device needs the rows
  EXPECT_FALSE(PackStepMetadata(b, layout, buf.data()).ok());
}

}  // namespace
}  // namespace kaon
