// The scheduler alone, over simulated steps with thousands of fake blocks and
// no model: budgets, chunking, admission order, preemption order, priorities,
// prefix-cache hits and up-front rejection.
#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "gtest/gtest.h"
#include "server/engine/scheduler.h"

namespace kaon {
namespace {

struct Sim {
  Sim(SchedulerConfig config, int64_t num_blocks, int64_t block_size, bool prefix_caching = true)
      : kv(num_blocks, block_size, prefix_caching), scheduler(config, &kv) {}

  Request* Add(int64_t id, int64_t prompt_len, int64_t max_tokens, int32_t priority = 0, int32_t first_token = 0,
               absl::Status* status = nullptr) {
    auto r = std::make_unique<Request>();
    r->id = id;
    r->arrival = next_arrival++;
    r->priority = priority;
    r->params.max_tokens = max_tokens;
    r->params.ignore_eos = true;
    for (int64_t i = 0; i < prompt_len; ++i) r->tokens.push_back(first_token + static_cast<int32_t>(i % 1000));
    r->num_prompt_tokens = prompt_len;
    Request* raw = r.get();
    absl::Status s = scheduler.Add(std::move(r));
    if (status) *status = s;
    return s.ok() ? raw : nullptr;
  }

  // One step: every sampling request gets token 7. Returns the scheduled
  // (id -> tokens) map.
  std::map<int64_t, int64_t> Step() {
    last = scheduler.Schedule();
    std::map<int64_t, int64_t> got;
    std::vector<int32_t> sampled;
    for (const auto& s : last.scheduled) {
      got[s.id] = s.num_new_tokens;
      if (s.samples) sampled.push_back(7);
    }
    for (auto& f : scheduler.Update(last, sampled)) finished.push_back(f->id);
    EXPECT_EQ(kv.CheckInvariants(), "");
    return got;
  }

  KvCacheManager kv;
  Scheduler scheduler;
  SchedulerOutput last;
  std::vector<int64_t> finished;
  uint64_t next_arrival = 0;
};

SchedulerConfig Config(int64_t tokens, int64_t seqs, int64_t max_len = 4096) {
  SchedulerConfig c;
  c.max_num_batched_tokens = tokens;
  c.max_num_seqs = seqs;
  c.max_model_len = max_len;
  return c;
}

TEST(Scheduler, ChunkedPrefillThenDecodeShareSteps) {
  Sim sim(Config(64, 8), 1000, 16);
  sim.Add(1, 100, 3);
  // 100 prompt tokens over a 64-token budget: 64, then 36 (+ nothing else).
  EXPECT_EQ(sim.Step(), (std::map<int64_t, int64_t>{{1, 64}}));
  EXPECT_TRUE(sim.last.scheduled[0].samples == false);
  sim.Add(2, 40, 2, 0, /*first_token=*/500);  // no prefix shared with 1
  // Request 1 finishes its prompt (36) and request 2 starts with the rest of the budget (28).
  EXPECT_EQ(sim.Step(), (std::map<int64_t, int64_t>{{1, 36}, {2, 28}}));
  // Decode of 1 (1 token) shares the step with the rest of 2's prompt (12).
  EXPECT_EQ(sim.Step(), (std::map<int64_t, int64_t>{{1, 1}, {2, 12}}));
  EXPECT_EQ(sim.last.num_scheduled_tokens, 13);
  EXPECT_EQ(sim.Step(), (std::map<int64_t, int64_t>{{1, 1}, {2, 1}}));
  EXPECT_EQ(sim.finished, (std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(sim.scheduler.has_work());
  EXPECT_EQ(sim.kv.num_free_blocks(), 1000);
}

TEST(Scheduler, MaxNumSeqsAndBudgetLimitAdmission) {
  Sim sim(Config(10, 3), 1000, 16);
  for (int64_t id = 1; id <= 5; ++id) sim.Add(id, 2, 100);
  auto got = sim.Step();
  EXPECT_EQ(got.size(), 3u);  // max_num_seqs
  EXPECT_EQ(sim.scheduler.num_waiting(), 2);
  // Budget 10 with 3 decodes: the others still wait for a seat.
  got = sim.Step();
  EXPECT_EQ(got, (std::map<int64_t, int64_t>{{1, 1}, {2, 1}, {3, 1}}));
}

TEST(Scheduler, FcfsPreemptsLatestArrivalAndItResumes) {
  // 6 blocks of 4 tokens. Three requests of 8-token prompts take 2 blocks each;
  // the first decode step needs a third block for everyone.
  Sim sim(Config(100, 8), 6, 4);
  sim.Add(1, 8, 8);
  sim.Add(2, 8, 8);
  sim.Add(3, 8, 8);
  sim.Step();  // all three prefill (6 blocks)
  auto got = sim.Step();
  // Request 1 needs a block; the latest arrival (3) is preempted for it,
  // then request 2 needs one too and 3 is gone, so 2 takes its freed block.
  EXPECT_EQ(sim.last.preempted, (std::vector<int64_t>{3}));
  EXPECT_EQ(got, (std::map<int64_t, int64_t>{{1, 1}, {2, 1}}));
  EXPECT_EQ(sim.scheduler.num_waiting(), 1);
  // Nothing new is admitted while memory is tight; 3 resumes once 1 and 2 finish
  // and recomputes its prompt plus its one output token.
  for (int i = 0; i < 20 && sim.scheduler.has_work(); ++i) sim.Step();
  EXPECT_FALSE(sim.scheduler.has_work());
  EXPECT_EQ(sim.finished.size(), 3u);
  EXPECT_EQ(sim.finished.back(), 3);
  EXPECT_EQ(sim.kv.num_free_blocks(), 6);
}

TEST(Scheduler, PriorityPolicyOrdersAdmissionAndPreemption) {
  SchedulerConfig c = Config(100, 1);
  c.policy = SchedulingPolicy::kPriority;
  Sim sim(c, 100, 16);
  sim.Add(1, 4, 1, /*priority=*/5);
  sim.Add(2, 4, 1, /*priority=*/-1);
  sim.Add(3, 4, 1, /*priority=*/5);
  sim.Add(4, 4, 1, /*priority=*/0);
  std::vector<int64_t> order;
  for (int i = 0; i < 10 && sim.scheduler.has_work(); ++i) {
    for (auto [id, n] : sim.Step()) order.push_back(id);
  }
  // Lower value first; equal priorities by arrival.
  EXPECT_EQ(order, (std::vector<int64_t>{2, 4, 1, 3}));

  // Preemption takes the largest priority value, latest arrival among equals.
  SchedulerConfig pc = Config(100, 8);
  pc.policy = SchedulingPolicy::kPriority;
  Sim tight(pc, 6, 4);
  tight.Add(1, 8, 8, 9);
  tight.Add(2, 8, 8, 0);
  tight.Add(3, 8, 8, 9);
  tight.Step();
  tight.Step();
  EXPECT_EQ(tight.last.preempted, (std::vector<int64_t>{3}));
}

TEST(Scheduler, RejectsWhatCanNeverRun) {
  SchedulerConfig c = Config(64, 8, /*max_len=*/100);
  c.max_num_queued_requests = 2;
  Sim sim(c, 4, 16);  // the whole cache holds 64 tokens
  absl::Status s;
  EXPECT_EQ(sim.Add(1, 90, 20, 0, 0, &s), nullptr);
  // Beyond max_model_len is the API's rule: reaching the scheduler is a bug.
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_EQ(sim.Add(2, 60, 20, 0, 0, &s), nullptr);  // fits max_len, not the cache
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("KV cache"), std::string::npos) << s;
  EXPECT_EQ(sim.Add(3, 0, 20, 0, 0, &s), nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);  // an empty prompt, likewise
  EXPECT_NE(sim.Add(4, 4, 4), nullptr);
  EXPECT_NE(sim.Add(5, 4, 4), nullptr);
  EXPECT_EQ(sim.Add(6, 4, 4, 0, 0, &s), nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
}

TEST(Scheduler, PrefixCacheHitSkipsComputedBlocks) {
  Sim sim(Config(1000, 8), 100, 16);
  sim.Add(1, 70, 1, 0, /*first_token=*/100);
  sim.Step();
  EXPECT_EQ(sim.finished, (std::vector<int64_t>{1}));
  // Same 70-token prompt: 4 full blocks (64 tokens) are cached.
  sim.Add(2, 70, 1, 0, 100);
  auto got = sim.Step();
  EXPECT_EQ(got, (std::map<int64_t, int64_t>{{2, 6}}));
  EXPECT_GT(sim.kv.stats().prefix_hits, 0);
  // A request asking for prompt logprobs computes everything.
  auto r = std::make_unique<Request>();
  r->id = 3;
  r->params.max_tokens = 1;
  r->params.prompt_logprobs = 1;
  for (int i = 0; i < 70; ++i) r->tokens.push_back(100 + i);
  r->num_prompt_tokens = 70;
  ASSERT_TRUE(sim.scheduler.Add(std::move(r)).ok());
  got = sim.Step();
  EXPECT_EQ(got, (std::map<int64_t, int64_t>{{3, 70}}));
}

TEST(Scheduler, PromptLogprobRowsAreBudgetedPerStep) {
  SchedulerConfig c = Config(1000, 8);
  c.max_prompt_logprob_tokens = 5;
  Sim sim(c, 100, 16);
  auto r = std::make_unique<Request>();
  r->id = 1;
  r->params.max_tokens = 1;
  r->params.prompt_logprobs = 0;
  for (int i = 0; i < 12; ++i) r->tokens.push_back(50 + i);
  r->num_prompt_tokens = 12;
  Request* raw = r.get();
  ASSERT_TRUE(sim.scheduler.Add(std::move(r)).ok());
  sim.Add(2, 30, 1, 0, 500);  // an ordinary request is not limited
  // 11 rows are needed (positions 0..10); 5 per step. The engine records
  // each step's rows; emulate it.
  std::vector<int64_t> chunks;
  for (int step = 0; step < 5 && sim.scheduler.has_work(); ++step) {
    auto out = sim.scheduler.Schedule();
    std::vector<int32_t> sampled;
    for (const auto& s : out.scheduled) {
      if (s.id == raw->id) {
        chunks.push_back(s.num_new_tokens);
        const int64_t rows = raw->PromptLogitRows(raw->num_computed_tokens, raw->num_computed_tokens + s.num_new_tokens);
        EXPECT_LE(rows, 5);
        raw->prompt_logprobs.resize(raw->prompt_logprobs.size() + rows);
      } else if (step == 0) {
        EXPECT_EQ(s.num_new_tokens, 30);
      }
      if (s.samples) sampled.push_back(7);
    }
    sim.scheduler.Update(out, sampled);
  }
  EXPECT_EQ(chunks, (std::vector<int64_t>{5, 5, 2}));
}

TEST(Scheduler, AbortFreesBlocksAnywhere) {
  Sim sim(Config(16, 8), 50, 4);
  sim.Add(1, 30, 10);
  sim.Add(2, 30, 10);
  sim.Step();  // 1 gets 16 tokens, 2 waits
  EXPECT_NE(sim.scheduler.Abort(2), nullptr);  // from the waiting queue
  EXPECT_NE(sim.scheduler.Abort(1), nullptr);  // from running
  EXPECT_EQ(sim.scheduler.Abort(1), nullptr);
  EXPECT_FALSE(sim.scheduler.has_work());
  EXPECT_EQ(sim.kv.num_free_blocks(), 50);
}

// A random storm of requests, with thousands of blocks: every step respects
// the budgets, every request eventually finishes with exactly max_tokens, and
// no block leaks.
TEST(Scheduler, RandomStormKeepsBudgetsAndFinishesEverything) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    std::mt19937_64 rng(seed);
    Sim sim(Config(256, 32, 2048), 2000, 16);
    std::map<int64_t, int64_t> expected_outputs;
    int64_t next_id = 1;
    for (int step = 0; step < 3000 && (next_id <= 300 || sim.scheduler.has_work()); ++step) {
      for (int k = std::uniform_int_distribution<int>(0, 2)(rng); k > 0 && next_id <= 300; --k) {
        const int64_t prompt = std::uniform_int_distribution<int64_t>(1, 600)(rng);
        const int64_t max_tokens = std::uniform_int_distribution<int64_t>(1, 60)(rng);
        ASSERT_NE(sim.Add(next_id, prompt, max_tokens, 0, static_cast<int32_t>(rng() % 3) * 1000), nullptr);
        expected_outputs[next_id++] = max_tokens;
      }
      sim.Step();
      ASSERT_LE(sim.last.num_scheduled_tokens, 256);
      ASSERT_LE(sim.last.scheduled.size(), 32u);
    }
    EXPECT_FALSE(sim.scheduler.has_work());
    EXPECT_EQ(sim.finished.size(), 300u);
    EXPECT_EQ(sim.kv.num_free_blocks(), 2000);
  }
}

TEST(Scheduler, PlainDataDeltasRebuildWhatTheRunnerNeeds) {
  // A mirror that reads only SchedulerOutput (and the ids it "sampled"), as
  // the model runner does, must hold every request's tokens and block ids
  // exactly as the scheduler and KV manager do, through preemptions.
  struct Mirror {
    std::vector<int32_t> tokens, blocks;
    int64_t computed = -1;  // -1: new this step (a prefix-cache hit may start it past 0)
  };
  std::mt19937_64 rng(9);
  Sim sim(Config(256, 32, 2048), 120, 16);  // ~4 full-length requests fit: decode growth preempts
  std::map<int64_t, Mirror> mirror;
  int64_t next_id = 1, preemptions = 0, admissions = 0;
  for (int step = 0; step < 40000 && (next_id <= 200 || sim.scheduler.has_work()); ++step) {
    for (int k = std::uniform_int_distribution<int>(0, 2)(rng); k > 0 && next_id <= 200; --k) {
      const int64_t prompt = std::uniform_int_distribution<int64_t>(1, 400)(rng);
      ASSERT_NE(sim.Add(next_id++, prompt, std::uniform_int_distribution<int64_t>(1, 300)(rng)), nullptr);
    }
    const SchedulerOutput out = sim.scheduler.Schedule();
    for (int64_t id : out.freed) mirror.erase(id);
    for (int64_t id : out.preempted) mirror.erase(id);
    preemptions += static_cast<int64_t>(out.preempted.size());
    for (const NewRequestData& n : out.new_requests) {
      ASSERT_FALSE(mirror.contains(n.id)) << "request " << n.id << " sent as new while the runner holds it";
      const Request* r = sim.scheduler.Find(n.id);
      ASSERT_NE(r, nullptr);
      EXPECT_EQ(n.token_ids, r->tokens);
      EXPECT_EQ(n.num_prompt_tokens, r->num_prompt_tokens);
      mirror[n.id].tokens = n.token_ids;
      ++admissions;
    }
    std::vector<int32_t> sampled;
    for (const ScheduledRequest& s : out.scheduled) {
      ASSERT_TRUE(mirror.contains(s.id)) << "request " << s.id << " scheduled but never sent";
      Mirror& m = mirror[s.id];
      m.blocks.insert(m.blocks.end(), out.block_ids.begin() + s.block_ids_begin, out.block_ids.begin() + s.block_ids_end);
      const std::span<const int32_t> want = sim.kv.Blocks(s.id);
      ASSERT_EQ(m.blocks, std::vector<int32_t>(want.begin(), want.end())) << "request " << s.id;
      if (m.computed >= 0) {
        EXPECT_EQ(s.num_computed_tokens, m.computed) << "request " << s.id;
      }
      m.computed = s.num_computed_tokens + s.num_new_tokens;
      EXPECT_EQ(s.samples, m.computed == static_cast<int64_t>(m.tokens.size()));
      if (s.samples) {
        sampled.push_back(static_cast<int32_t>(3 + step % 5));
        m.tokens.push_back(sampled.back());
      }
    }
    sim.scheduler.Update(out, sampled);
    for (const ScheduledRequest& s : out.scheduled) {
      if (const Request* r = sim.scheduler.Find(s.id)) {
        EXPECT_EQ(mirror[s.id].tokens, r->tokens);
      }
    }
  }
  EXPECT_FALSE(sim.scheduler.has_work());
  EXPECT_GT(preemptions, 0) << "the test must exercise resumption";
  EXPECT_GT(admissions, 200);  // resumed requests are sent again
}

}  // namespace
}  // namespace kaon
