// Start-up memory planning and step-metadata packing: the host-side logic a
// device backend relies on, tested without a device.
#include <numeric>

#include "gtest/gtest.h"
#include "server/runtime/memory_plan.h"
#include "server/runtime/step_metadata.h"

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
  EXPECT_EQ(ActivationBytes(c, 3, 2, 2), 3 * 70 * 2 + 2 * (8 * 2 + 400));
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

TEST(StepMetadata, PacksIntoAlignedSectionsAndViewsBack) {
  StepMetadataCapacity cap{.max_tokens = 9, .max_seqs = 3, .max_blocks_per_seq = 4, .max_logits = 5};
  const StepMetadataLayout layout(cap);
  for (size_t off : {layout.token_ids, layout.positions, layout.slot_mapping, layout.query_start_loc,
                     layout.seq_lens, layout.block_table, layout.logits_indices, layout.total_bytes}) {
    EXPECT_EQ(off % 16, 0u);
  }
  // Two sequences: a 3-token prefill chunk and a decode.
  const int32_t ids[] = {5, 6, 7, 8};
  const int32_t pos[] = {0, 1, 2, 10};
  const int64_t slots[] = {40, 41, 42, 90};
  const int32_t qsl[] = {0, 3, 4};
  const int32_t lens[] = {3, 11};
  const int32_t table[] = {10, 0, 0, 0, 22, 5, 0, 0};
  const int32_t logits[] = {2, 3};
  ForwardBatch b;
  b.num_tokens = 4;
  b.token_ids = ids;
  b.positions = pos;
  b.slot_mapping = slots;
  b.attn = {qsl, lens, table, 2, 4, 11};
  b.num_logits = 2;
  b.logits_indices = logits;

  std::vector<std::byte> buf(layout.total_bytes, std::byte{0xAB});
  auto used = PackStepMetadata(b, layout, buf.data());
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_LE(*used, layout.total_bytes);
  EXPECT_EQ(*used, layout.logits_indices + 2 * sizeof(int32_t));

  const ForwardBatch v = DeviceView(b, layout, buf.data());
  EXPECT_EQ(v.num_tokens, 4);
  EXPECT_EQ(v.attn.max_seq_len, 11);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(v.token_ids[i], ids[i]);
    EXPECT_EQ(v.positions[i], pos[i]);
    EXPECT_EQ(v.slot_mapping[i], slots[i]);
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(v.attn.query_start_loc[i], qsl[i]);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(v.attn.block_table[i], table[i]);
  EXPECT_EQ(v.attn.seq_lens[1], 11);
  EXPECT_EQ(v.logits_indices[1], 3);

  b.num_tokens = 10;  // over capacity
  EXPECT_FALSE(PackStepMetadata(b, layout, buf.data()).ok());
  b.num_tokens = 4;
  b.attn.max_blocks_per_seq = 5;  // a table of another width
  EXPECT_FALSE(PackStepMetadata(b, layout, buf.data()).ok());
}

}  // namespace
}  // namespace kaon
