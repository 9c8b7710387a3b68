// Correctness part of the GPU check: every CUDA kernel, every dtype, several
// shapes (odd lengths, block boundaries, long contexts), on fresh random
// inputs, against fp64 references written here (independent of the CPU
// twins). Outputs are poisoned with NaN first; in-place kernels also have the
// parts they must not touch compared bit for bit.
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cpu/paged_kv.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/convert.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/kv_cache_write.h"
#include "kernels/cuda/paged_attention.h"
#include "kernels/cuda/rmsnorm.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/sampling.h"
#include "tests/gpu/check_common.h"

namespace kaon::gpucheck {
namespace {

namespace gpu = kaon::kernels::gpu;
using std::to_string;

// Runs one case; `body` fills r.err (and r.note) and returns false when a
// check other than the error threshold failed (an untouched region changed,
// a flag was wrong).
void RunCase(Context& ctx, const std::string& kernel, const char* dtype, const std::string& shape, double tol,
             const std::function<bool(CaseResult&)>& body) {
  CaseResult r{kernel, dtype, shape, NAN, tol, false, ""};
  if (ctx.PastDeadline()) {
    r.note = "not run: past the deadline";
    ctx.Record(std::move(r));
    return;
  }
  try {
    const bool other_ok = body(r);
    r.pass = other_ok && r.err <= tol;  // NaN compares false
  } catch (const CheckError& e) {
    r.err = NAN;
    r.pass = false;
    r.note = e.what();
  }
  ctx.Record(std::move(r));
}

void Sync() { KAON_CHECK_CUDA(cudaDeviceSynchronize()); }

// ---------------------------------------------------------------- embedding
template <typename T>
void CheckEmbedding(Context& ctx, Rng& rng) {
  struct Shape { int64_t vocab, hidden, tokens, vocab_begin, shard_rows; bool bad_ids; };
  const Shape shapes[] = {{1000, 1, 7, 0, 1000, false},
                          {50, 257, 33, 0, 50, true},
                          {32000, 64, 100, 8000, 8000, false},
                          {151936, 16, 17, 0, 151936, true}};
  for (const Shape& s : shapes) {
    const std::string shape = "vocab=" + to_string(s.vocab) + " hidden=" + to_string(s.hidden) + " tokens=" +
                              to_string(s.tokens) + " shard=[" + to_string(s.vocab_begin) + "," +
                              to_string(s.vocab_begin + s.shard_rows) + ")" + (s.bad_ids ? " +bad ids" : "");
    RunCase(ctx, "embedding", Dt<T>::kName, shape, 0.0, [&](CaseResult& r) {
      HostTensor<T> table = RandomTensor<T>(rng, s.shard_rows * s.hidden);
      std::vector<int32_t> ids(s.tokens);
      for (auto& id : ids) id = static_cast<int32_t>(rng.Int(0, s.vocab - 1));
      if (s.bad_ids) {
        ids.front() = -1;
        ids.back() = static_cast<int32_t>(s.vocab);
      }
      std::vector<T> expect(s.tokens * s.hidden, Dt<T>::From(0.0));
      for (int64_t t = 0; t < s.tokens; ++t) {
        const int64_t row = static_cast<int64_t>(ids[t]) - s.vocab_begin;
        if (ids[t] < 0 || ids[t] >= s.vocab || row < 0 || row >= s.shard_rows) continue;
        std::copy_n(table.t.begin() + row * s.hidden, s.hidden, expect.begin() + t * s.hidden);
      }
      DeviceBuffer<T> d_table(table.t), d_out(expect.size());
      DeviceBuffer<int32_t> d_ids(ids), d_flag(std::vector<int32_t>{0});
      d_out.Poison();
      KAON_CHECK_OK(gpu::EmbeddingLookup<T>(d_table.get(), s.shard_rows, s.hidden, s.vocab_begin, s.vocab,
                                            d_ids.get(), s.tokens, d_out.get(), d_flag.get(), nullptr));
      Sync();
      r.err = static_cast<double>(CountBitMismatches(d_out.Download(), expect));
      const int32_t flag = d_flag.Download()[0];
      if (flag != (s.bad_ids ? 1 : 0)) {
        r.note = "bad-id flag " + to_string(flag);
        return false;
      }
      r.note = "mismatched elements";
      return true;
    });
  }
}

// ---------------------------------------------------------------- rmsnorm
double InvRms(const double* x, int64_t n, double eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  return 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
}

template <typename T>
void CheckRmsNorm(Context& ctx, Rng& rng) {
  const double eps = 1e-6;
  struct Shape { int64_t rows, cols; };
  const Shape shapes[] = {{1, 8}, {33, 64}, {7, 4096}, {5, 5120}, {3, 1001}, {2, 1}};
  for (const Shape& s : shapes) {
    for (const bool in_place : {false, true}) {
      const std::string shape = "rows=" + to_string(s.rows) + " cols=" + to_string(s.cols) + (in_place ? " in-place" : "");
      RunCase(ctx, "rmsnorm", Dt<T>::kName, shape, Dt<T>::kTol, [&](CaseResult& r) {
        HostTensor<T> x = RandomTensor<T>(rng, s.rows * s.cols, 2.0, 0.3);
        HostTensor<T> w = RandomTensor<T>(rng, s.cols, 0.1, 1.0);
        std::vector<double> ref(x.d.size());
        for (int64_t i = 0; i < s.rows; ++i) {
          const double inv = InvRms(&x.d[i * s.cols], s.cols, eps);
          for (int64_t c = 0; c < s.cols; ++c) ref[i * s.cols + c] = x.d[i * s.cols + c] * inv * w.d[c];
        }
        DeviceBuffer<T> d_x(x.t), d_w(w.t), d_out(x.t.size());
        d_out.Poison();
        T* out = in_place ? d_x.get() : d_out.get();
        KAON_CHECK_OK(gpu::RmsNorm<T>(d_x.get(), d_w.get(), static_cast<float>(eps), s.rows, s.cols, out, nullptr));
        Sync();
        r.err = RelErr(Widen(in_place ? d_x.Download() : d_out.Download()), ref);
        return true;
      });
    }
    const std::string shape = "rows=" + to_string(s.rows) + " cols=" + to_string(s.cols);
    RunCase(ctx, "fused_add_rmsnorm", Dt<T>::kName, shape, Dt<T>::kTol, [&](CaseResult& r) {
      HostTensor<T> x = RandomTensor<T>(rng, s.rows * s.cols, 1.0);
      HostTensor<T> res = RandomTensor<T>(rng, s.rows * s.cols, 3.0, -0.2);
      HostTensor<T> w = RandomTensor<T>(rng, s.cols, 0.1, 1.0);
      std::vector<double> ref_res(x.d.size()), ref_x(x.d.size());
      for (size_t i = 0; i < ref_res.size(); ++i) ref_res[i] = x.d[i] + res.d[i];
      for (int64_t i = 0; i < s.rows; ++i) {
        const double inv = InvRms(&ref_res[i * s.cols], s.cols, eps);
        for (int64_t c = 0; c < s.cols; ++c) ref_x[i * s.cols + c] = ref_res[i * s.cols + c] * inv * w.d[c];
      }
      DeviceBuffer<T> d_x(x.t), d_res(res.t), d_w(w.t);
      KAON_CHECK_OK(gpu::FusedAddRmsNorm<T>(d_x.get(), d_res.get(), d_w.get(), static_cast<float>(eps), s.rows,
                                            s.cols, nullptr));
      Sync();
      const double ex = RelErr(Widen(d_x.Download()), ref_x);
      const double er = RelErr(Widen(d_res.Download()), ref_res);
      r.err = std::isnan(ex) || std::isnan(er) ? NAN : std::max(ex, er);
      return true;
    });
  }
  // Qwen3 q/k norm: heads inside the fused qkv buffer; v must stay untouched.
  for (const int64_t d : {8, 64, 128}) {
    const int64_t tokens = 9, h = 4, kvh = 2, width = (h + 2 * kvh) * d;
    const std::string shape = "tokens=" + to_string(tokens) + " heads=" + to_string(h) + "+" + to_string(kvh) +
                              " head_dim=" + to_string(d) + " stride=" + to_string(width);
    RunCase(ctx, "rmsnorm_heads", Dt<T>::kName, shape, Dt<T>::kTol, [&](CaseResult& r) {
      HostTensor<T> qkv = RandomTensor<T>(rng, tokens * width, 1.5);
      HostTensor<T> wq = RandomTensor<T>(rng, d, 0.1, 1.0), wk = RandomTensor<T>(rng, d, 0.1, 1.0);
      std::vector<double> ref = qkv.d;
      for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t hh = 0; hh < h + kvh; ++hh) {
          double* x = &ref[t * width + hh * d];
          const std::vector<double>& w = hh < h ? wq.d : wk.d;
          const double inv = InvRms(x, d, eps);
          for (int64_t i = 0; i < d; ++i) x[i] = x[i] * inv * w[i];
        }
      }
      DeviceBuffer<T> d_qkv(qkv.t), d_wq(wq.t), d_wk(wk.t);
      KAON_CHECK_OK(gpu::RmsNormHeads<T>(d_qkv.get(), width, tokens, h, d, d_wq.get(), static_cast<float>(eps), nullptr));
      KAON_CHECK_OK(gpu::RmsNormHeads<T>(d_qkv.get() + h * d, width, tokens, kvh, d, d_wk.get(),
                                         static_cast<float>(eps), nullptr));
      Sync();
      const std::vector<T> got = d_qkv.Download();
      r.err = RelErr(Widen(got), ref);
      size_t changed = 0;
      for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t i = (h + kvh) * d; i < width; ++i) {
          changed += std::memcmp(&got[t * width + i], &qkv.t[t * width + i], sizeof(T)) != 0;
        }
      }
      if (changed) r.note = to_string(changed) + " v elements changed";
      return changed == 0;
    });
  }
}

// ---------------------------------------------------------------- rope
template <typename T>
void CheckRope(Context& ctx, Rng& rng) {
  struct Shape { int64_t tokens, h, kvh, d; };
  const Shape shapes[] = {{11, 4, 2, 8}, {11, 4, 2, 16}, {11, 4, 2, 64}, {11, 4, 2, 128}, {5, 32, 8, 128}};
  const int64_t max_pos = 4096;
  for (const Shape& s : shapes) {
    const int64_t width = (s.h + 2 * s.kvh) * s.d, half = s.d / 2;
    const std::string shape = "tokens=" + to_string(s.tokens) + " heads=" + to_string(s.h) + "+" + to_string(s.kvh) +
                              " head_dim=" + to_string(s.d) + " +1 bad position";
    RunCase(ctx, "rope_neox", Dt<T>::kName, shape, Dt<T>::kTol, [&](CaseResult& r) {
      std::vector<float> cos_c(max_pos * half), sin_c(max_pos * half);
      for (int64_t p = 0; p < max_pos; ++p) {
        for (int64_t i = 0; i < half; ++i) {
          const double angle = static_cast<double>(p) * std::pow(10000.0, -2.0 * static_cast<double>(i) / s.d);
          cos_c[p * half + i] = static_cast<float>(std::cos(angle));
          sin_c[p * half + i] = static_cast<float>(std::sin(angle));
        }
      }
      std::vector<int32_t> pos(s.tokens);
      for (auto& p : pos) p = static_cast<int32_t>(rng.Int(0, max_pos - 1));
      pos[0] = 0;
      pos[1] = static_cast<int32_t>(max_pos - 1);
      pos[2] = static_cast<int32_t>(max_pos);  // out of range: must be left as is
      HostTensor<T> qkv = RandomTensor<T>(rng, s.tokens * width);
      std::vector<double> ref = qkv.d;
      for (int64_t t = 0; t < s.tokens; ++t) {
        if (pos[t] >= max_pos) continue;
        for (int64_t hh = 0; hh < s.h + s.kvh; ++hh) {
          double* x = &ref[t * width + hh * s.d];
          for (int64_t i = 0; i < half; ++i) {
            const double c = cos_c[pos[t] * half + i], sn = sin_c[pos[t] * half + i];
            const double x1 = x[i], x2 = x[i + half];
            x[i] = x1 * c - x2 * sn;
            x[i + half] = x2 * c + x1 * sn;
          }
        }
      }
      DeviceBuffer<T> d_qkv(qkv.t);
      DeviceBuffer<int32_t> d_pos(pos);
      DeviceBuffer<float> d_cos(cos_c), d_sin(sin_c);
      KAON_CHECK_OK(gpu::ApplyRotaryNeox<T>(d_qkv.get(), width, d_qkv.get() + s.h * s.d, width, d_pos.get(), s.tokens,
                                            s.h, s.kvh, s.d, d_cos.get(), d_sin.get(), max_pos, nullptr));
      Sync();
      const std::vector<T> got = d_qkv.Download();
      r.err = RelErr(Widen(got), ref);
      size_t changed = 0;  // v and the bad-position token must be bit-identical
      for (int64_t t = 0; t < s.tokens; ++t) {
        const int64_t from = pos[t] >= max_pos ? 0 : (s.h + s.kvh) * s.d;
        for (int64_t i = from; i < width; ++i) {
          changed += std::memcmp(&got[t * width + i], &qkv.t[t * width + i], sizeof(T)) != 0;
        }
      }
      if (changed) r.note = to_string(changed) + " elements that must stay were changed";
      return changed == 0;
    });
  }
}

// ---------------------------------------------------------------- kv cache write
template <typename T>
void CheckKvWrite(Context& ctx, Rng& rng) {
  struct Shape { int64_t blocks, block_size, kvh, d, h, tokens; };
  const Shape shapes[] = {{13, 16, 2, 64, 4, 40}, {7, 5, 4, 8, 8, 30}, {4, 16, 8, 128, 32, 63}};
  for (const Shape& s : shapes) {
    kernels::PagedKvShape shape{s.blocks, s.block_size, s.kvh, s.d};
    const int64_t width = (s.h + 2 * s.kvh) * s.d, stride = shape.slot_stride();
    const std::string desc = "blocks=" + to_string(s.blocks) + "x" + to_string(s.block_size) + " kv_heads=" +
                             to_string(s.kvh) + " head_dim=" + to_string(s.d) + " tokens=" + to_string(s.tokens);
    RunCase(ctx, "kv_cache_write", Dt<T>::kName, desc, 0.0, [&](CaseResult& r) {
      std::vector<int64_t> slots(shape.num_slots());
      std::iota(slots.begin(), slots.end(), 0);
      for (size_t i = slots.size(); i > 1; --i) std::swap(slots[i - 1], slots[rng.Int(0, i - 1)]);
      slots.resize(s.tokens);
      slots[1] = -1;
      slots[s.tokens / 2] = -1;
      slots[s.tokens - 2] = shape.num_slots();     // out of range: skipped
      slots[s.tokens - 1] = int64_t{1} << 40;      // far out of range: skipped
      HostTensor<T> qkv = RandomTensor<T>(rng, s.tokens * width);
      std::vector<T> poison(shape.layer_elems());
      std::memset(static_cast<void*>(poison.data()), 0xFF, poison.size() * sizeof(T));
      std::vector<T> expect_k = poison, expect_v = poison;
      for (int64_t t = 0; t < s.tokens; ++t) {
        if (slots[t] < 0 || slots[t] >= shape.num_slots()) continue;
        std::copy_n(qkv.t.begin() + t * width + s.h * s.d, stride, expect_k.begin() + slots[t] * stride);
        std::copy_n(qkv.t.begin() + t * width + (s.h + s.kvh) * s.d, stride, expect_v.begin() + slots[t] * stride);
      }
      DeviceBuffer<T> d_qkv(qkv.t), d_k(poison.size()), d_v(poison.size());
      DeviceBuffer<int64_t> d_slots(slots);
      d_k.Poison();
      d_v.Poison();
      KAON_CHECK_OK(gpu::WriteKvCache<T>(d_qkv.get() + s.h * s.d, width, d_qkv.get() + (s.h + s.kvh) * s.d, width,
                                         d_slots.get(), s.tokens, shape, d_k.get(), d_v.get(), nullptr));
      Sync();
      r.err = static_cast<double>(CountBitMismatches(d_k.Download(), expect_k) +
                                  CountBitMismatches(d_v.Download(), expect_v));
      r.note = "mismatched elements";
      return true;
    });
  }
}

// ---------------------------------------------------------------- paged attention
struct AttnCase {
  int64_t d, h, kvh, block_size;
  std::vector<std::pair<int64_t, int64_t>> seqs;  // (seq_len, q_len)
  int64_t pad_rows = 0;
  double scale_mult = 1.0;  // > 1: peaky softmax, large scores
};

template <typename T>
void CheckAttentionCase(Context& ctx, Rng& rng, const AttnCase& c) {
  std::string desc = "d=" + to_string(c.d) + " h=" + to_string(c.h) + "/" + to_string(c.kvh) +
                     " bs=" + to_string(c.block_size) + " seqs(len:q)=";
  for (const auto& [len, ql] : c.seqs) desc += to_string(len) + ":" + to_string(ql) + ",";
  desc.pop_back();
  if (c.pad_rows) desc += " pad=" + to_string(c.pad_rows);
  if (c.scale_mult != 1.0) desc += " scale*" + to_string(static_cast<int>(c.scale_mult));
  RunCase(ctx, "paged_attention", Dt<T>::kName, desc, Dt<T>::kTol, [&](CaseResult& r) {
    const int64_t num_seqs = static_cast<int64_t>(c.seqs.size());
    const int64_t d = c.d, bs = c.block_size, group = c.h / c.kvh;
    // Scattered pages: every sequence's blocks come from a shuffled pool with
    // spare blocks left over; table entries past a sequence's blocks hold a
    // wild id that must never be read.
    int64_t needed = 0, max_blocks = 1;
    for (const auto& [len, ql] : c.seqs) {
      needed += (len + bs - 1) / bs;
      max_blocks = std::max(max_blocks, (len + bs - 1) / bs + 1);
    }
    const int64_t num_blocks = needed + 3;
    std::vector<int32_t> pool(num_blocks);
    std::iota(pool.begin(), pool.end(), 0);
    for (size_t i = pool.size(); i > 1; --i) std::swap(pool[i - 1], pool[rng.Int(0, i - 1)]);
    std::vector<int32_t> table(num_seqs * max_blocks, 1 << 30);
    std::vector<int32_t> qsl(num_seqs + 1, 0), lens(num_seqs);
    int64_t next = 0, max_len = 0;
    for (int64_t s = 0; s < num_seqs; ++s) {
      const auto [len, ql] = c.seqs[s];
      for (int64_t b = 0; b < (len + bs - 1) / bs; ++b) table[s * max_blocks + b] = pool[next++];
      lens[s] = static_cast<int32_t>(len);
      qsl[s + 1] = static_cast<int32_t>(qsl[s] + ql);
      max_len = std::max(max_len, len);
    }
    const int64_t q_tokens = qsl[num_seqs], num_tokens = q_tokens + c.pad_rows;
    kernels::PagedKvShape shape{num_blocks, bs, c.kvh, d};
    const int64_t ss = shape.slot_stride();
    // Cache: NaN everywhere except the context positions, so a read of a
    // wrong page, a wrong head or a position past the context shows up as NaN.
    HostTensor<T> k{std::vector<T>(shape.layer_elems(), Dt<T>::From(NAN)), std::vector<double>(shape.layer_elems(), NAN)};
    HostTensor<T> v = k;
    for (int64_t s = 0; s < num_seqs; ++s) {
      for (int64_t j = 0; j < lens[s]; ++j) {
        const int64_t slot = static_cast<int64_t>(table[s * max_blocks + j / bs]) * bs + j % bs;
        for (int64_t i = 0; i < ss; ++i) {
          k.Set(slot * ss + i, rng.Normal());
          v.Set(slot * ss + i, rng.Normal());
        }
      }
    }
    // q inside a fused qkv row: the k/v part of each row is NaN.
    const int64_t width = (c.h + 2 * c.kvh) * d;
    HostTensor<T> q{std::vector<T>(num_tokens * width, Dt<T>::From(NAN)), std::vector<double>(num_tokens * width, NAN)};
    for (int64_t t = 0; t < num_tokens; ++t)
      for (int64_t i = 0; i < c.h * d; ++i) q.Set(t * width + i, rng.Normal());
    const double scale = c.scale_mult / std::sqrt(static_cast<double>(d));

    std::vector<double> ref(num_tokens * c.h * d, 0.0), scores(max_len);
    for (int64_t s = 0; s < num_seqs; ++s) {
      const int64_t ql = qsl[s + 1] - qsl[s];
      for (int64_t i = 0; i < ql; ++i) {
        const int64_t t = qsl[s] + i, pos = lens[s] - ql + i;
        for (int64_t hh = 0; hh < c.h; ++hh) {
          const double* qh = &q.d[t * width + hh * d];
          const int64_t off = (hh / group) * d;
          double mx = -INFINITY;
          for (int64_t j = 0; j <= pos; ++j) {
            const int64_t slot = static_cast<int64_t>(table[s * max_blocks + j / bs]) * bs + j % bs;
            double dot = 0.0;
            for (int64_t x = 0; x < d; ++x) dot += qh[x] * k.d[slot * ss + off + x];
            scores[j] = dot * static_cast<double>(static_cast<float>(scale));
            mx = std::max(mx, scores[j]);
          }
          double denom = 0.0;
          for (int64_t j = 0; j <= pos; ++j) denom += (scores[j] = std::exp(scores[j] - mx));
          double* o = &ref[(t * c.h + hh) * d];
          for (int64_t j = 0; j <= pos; ++j) {
            const int64_t slot = static_cast<int64_t>(table[s * max_blocks + j / bs]) * bs + j % bs;
            for (int64_t x = 0; x < d; ++x) o[x] += scores[j] / denom * v.d[slot * ss + off + x];
          }
        }
      }
    }

    DeviceBuffer<T> d_q(q.t), d_k(k.t), d_v(v.t), d_out(ref.size());
    DeviceBuffer<int32_t> d_qsl(qsl), d_lens(lens), d_table(table);
    d_out.Poison();
    kernels::AttentionMetadata meta;
    meta.query_start_loc = d_qsl.get();
    meta.seq_lens = d_lens.get();
    meta.block_table = d_table.get();
    meta.num_seqs = num_seqs;
    meta.max_blocks_per_seq = max_blocks;
    meta.max_seq_len = max_len;
    KAON_CHECK_OK(gpu::PagedAttention<T>(d_q.get(), width, d_k.get(), d_v.get(), shape, meta, num_tokens, c.h,
                                         static_cast<float>(scale), d_out.get(), nullptr));
    Sync();
    r.err = RelErr(Widen(d_out.Download()), ref);
    return true;
  });
}

template <typename T>
void CheckAttention(Context& ctx, Rng& rng) {
  const AttnCase cases[] = {
      // stories260k-like: head_dim 8, GQA 2; first token, block_size - 1, block_size, block_size + 1.
      {8, 8, 4, 16, {{1, 1}, {15, 15}, {16, 16}, {17, 17}, {40, 7}, {33, 1}}},
      // MHA decodes around a block boundary plus a 300-token prefill.
      {16, 4, 4, 16, {{17, 1}, {16, 1}, {15, 1}, {1, 1}, {300, 300}}},
      // GQA 8, a long decode, a chunk over a cached prefix, padding rows.
      {32, 8, 1, 16, {{2000, 1}, {100, 37}, {31, 31}}, 2},
      // GQA 4, block_size 32, mixed.
      {64, 8, 2, 32, {{700, 33}, {64, 1}, {65, 2}, {2000, 1}}},
      // GQA 2, head_dim 128 (Llama-class), mixed.
      {128, 16, 8, 16, {{2000, 1}, {257, 17}, {1, 1}, {48, 16}}},
      // Large scores (8x the usual scale): a naive exp would overflow.
      {128, 4, 1, 16, {{500, 5}, {33, 1}}, 0, 8.0},
      // Sequences with no query rows in the batch between ones with rows.
      {16, 2, 1, 8, {{10, 0}, {5, 5}, {20, 0}, {7, 1}, {9, 0}}},
  };
  for (const AttnCase& c : cases) CheckAttentionCase<T>(ctx, rng, c);
}

// ---------------------------------------------------------------- silu_and_mul
template <typename T>
void CheckSilu(Context& ctx, Rng& rng) {
  struct Shape { int64_t rows, cols; };
  const Shape shapes[] = {{1, 1}, {7, 1376}, {33, 64}, {3, 1001}};
  for (const Shape& s : shapes) {
    RunCase(ctx, "silu_and_mul", Dt<T>::kName, "rows=" + to_string(s.rows) + " cols=" + to_string(s.cols),
            Dt<T>::kTol, [&](CaseResult& r) {
              HostTensor<T> gu = RandomTensor<T>(rng, s.rows * 2 * s.cols, 3.0);
              std::vector<double> ref(s.rows * s.cols);
              for (int64_t i = 0; i < s.rows; ++i) {
                for (int64_t c = 0; c < s.cols; ++c) {
                  const double g = gu.d[i * 2 * s.cols + c], u = gu.d[i * 2 * s.cols + s.cols + c];
                  ref[i * s.cols + c] = g / (1.0 + std::exp(-g)) * u;
                }
              }
              DeviceBuffer<T> d_gu(gu.t), d_out(ref.size());
              d_out.Poison();
              KAON_CHECK_OK(gpu::SiluAndMul<T>(d_gu.get(), s.rows, s.cols, d_out.get(), nullptr));
              Sync();
              r.err = RelErr(Widen(d_out.Download()), ref);
              return true;
            });
  }
}

// ---------------------------------------------------------------- gemm
template <typename T>
void CheckGemm(Context& ctx, Rng& rng, gpu::GemmHandle& gemm) {
  struct Shape { int64_t m, n, k; bool bias; };
  const Shape shapes[] = {{1, 1, 1, false},     {7, 13, 33, true},       {64, 128, 256, false},
                          {257, 384, 320, true}, {1, 2048, 512, false},  {33, 1000, 1024, true},
                          {5, 64, 4096, false}};
  for (const Shape& s : shapes) {
    const std::string desc = "m=" + to_string(s.m) + " n=" + to_string(s.n) + " k=" + to_string(s.k) +
                             (s.bias ? " +bias" : "") +
                             (std::is_same_v<T, float> ? " (COMPUTE_32F, no TF32)" : "");
    RunCase(ctx, "gemm", Dt<T>::kName, desc, Dt<T>::kTol, [&](CaseResult& r) {
      HostTensor<T> x = RandomTensor<T>(rng, s.m * s.k), w = RandomTensor<T>(rng, s.n * s.k);
      HostTensor<T> b = RandomTensor<T>(rng, s.n);
      std::vector<double> ref(s.m * s.n);
      for (int64_t i = 0; i < s.m; ++i) {
        for (int64_t j = 0; j < s.n; ++j) {
          double acc = s.bias ? b.d[j] : 0.0;
          for (int64_t p = 0; p < s.k; ++p) acc += x.d[i * s.k + p] * w.d[j * s.k + p];
          ref[i * s.n + j] = acc;
        }
      }
      DeviceBuffer<T> d_x(x.t), d_w(w.t), d_b(b.t), d_y(ref.size());
      d_y.Poison();
      KAON_CHECK_OK(gemm.Linear<T>(d_x.get(), d_w.get(), s.bias ? d_b.get() : nullptr, s.m, s.n, s.k, d_y.get(), nullptr));
      Sync();
      r.err = RelErr(Widen(d_y.Download()), ref);
      return true;
    });
  }
}

// ---------------------------------------------------------------- argmax
template <typename T>
void CheckArgmax(Context& ctx, Rng& rng) {
  struct Shape { int64_t rows, vocab, sampleable; };
  const Shape shapes[] = {{3, 1, 1}, {5, 7, 7}, {4, 32000, 32000}, {3, 151936, 151665}, {6, 1000, 999}};
  for (const Shape& s : shapes) {
    const std::string desc = "rows=" + to_string(s.rows) + " vocab=" + to_string(s.vocab) +
                             " sampleable=" + to_string(s.sampleable) + " +ties";
    RunCase(ctx, "argmax", Dt<T>::kName, desc, 0.0, [&](CaseResult& r) {
      HostTensor<T> logits = RandomTensor<T>(rng, s.rows * s.vocab, 2.0);
      for (int64_t i = 0; i < s.rows; ++i) {
        T* row = &logits.t[i * s.vocab];
        if (i % 3 == 1) {  // planted ties at the maximum: the lowest id must win
          for (int n = 0; n < 3; ++n) row[rng.Int(0, s.sampleable - 1)] = Dt<T>::From(50.0);
        }
        if (i % 3 == 2) {  // a constant row: id 0
          for (int64_t c = 0; c < s.vocab; ++c) row[c] = Dt<T>::From(-1.5);
        }
        // Padding ids past sampleable_vocab hold the largest values; never chosen.
        for (int64_t c = s.sampleable; c < s.vocab; ++c) row[c] = Dt<T>::From(100.0);
      }
      std::vector<int32_t> expect(s.rows);
      for (int64_t i = 0; i < s.rows; ++i) {
        int64_t best = 0;
        for (int64_t c = 1; c < s.sampleable; ++c)
          if (Dt<T>::To(logits.t[i * s.vocab + c]) > Dt<T>::To(logits.t[i * s.vocab + best])) best = c;
        expect[i] = static_cast<int32_t>(best);
      }
      DeviceBuffer<T> d_logits(logits.t);
      DeviceBuffer<int32_t> d_ids(s.rows);
      d_ids.Poison();
      KAON_CHECK_OK(gpu::ArgmaxRows<T>(d_logits.get(), s.rows, s.vocab, s.sampleable, d_ids.get(), nullptr));
      Sync();
      r.err = static_cast<double>(CountBitMismatches(d_ids.Download(), expect));
      r.note = "wrong ids";
      return true;
    });
  }
}

// ---------------------------------------------------------------- convert
bool SameOrBothNan(double a, double b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0; }

template <typename T>
void CheckConvert(Context& ctx, Rng& rng) {
  // fp32 -> T: random magnitudes over 2^-30..2^30 plus the edge values.
  RunCase(ctx, "convert", Dt<T>::kName, std::string("f32->") + Dt<T>::kName + " n=1000003 +specials", 0.0,
          [&](CaseResult& r) {
            std::vector<float> in(1000003);
            for (auto& v : in) v = static_cast<float>(rng.Normal() * std::ldexp(1.0, static_cast<int>(rng.Int(-30, 30))));
            const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, 65504.0f, 65520.0f,
                                      -1e30f, 3.3895314e38f, 1.0f + 0x1.0p-8f, 1.0f + 0x1.0p-11f};
            std::copy(std::begin(specials), std::end(specials), in.begin());
            DeviceBuffer<float> d_in(in);
            DeviceBuffer<T> d_out(in.size());
            d_out.Poison();
            KAON_CHECK_OK((gpu::Convert<float, T>(d_in.get(), static_cast<int64_t>(in.size()), d_out.get(), nullptr)));
            Sync();
            const std::vector<T> got = d_out.Download();
            size_t bad = 0;
            for (size_t i = 0; i < in.size(); ++i) {
              const T want = Dt<T>::From(in[i]);
              bad += std::isnan(in[i]) ? !std::isnan(Dt<T>::To(got[i])) : std::memcmp(&want, &got[i], sizeof(T)) != 0;
            }
            r.err = static_cast<double>(bad);
            r.note = "mismatched elements";
            return true;
          });
  if constexpr (!std::is_same_v<T, float>) {
    // T -> fp32: every one of the 65536 bit patterns.
    RunCase(ctx, "convert", Dt<T>::kName, std::string(Dt<T>::kName) + "->f32 all 65536 patterns", 0.0,
            [&](CaseResult& r) {
              std::vector<T> in(65536);
              for (uint32_t i = 0; i < 65536; ++i) {
                const uint16_t bits = static_cast<uint16_t>(i);
                std::memcpy(static_cast<void*>(&in[i]), &bits, 2);
              }
              DeviceBuffer<T> d_in(in);
              DeviceBuffer<float> d_out(in.size());
              d_out.Poison();
              KAON_CHECK_OK((gpu::Convert<T, float>(d_in.get(), 65536, d_out.get(), nullptr)));
              Sync();
              const std::vector<float> got = d_out.Download();
              size_t bad = 0;
              for (size_t i = 0; i < in.size(); ++i) bad += !SameOrBothNan(got[i], Dt<T>::To(in[i]));
              r.err = static_cast<double>(bad);
              r.note = "mismatched elements";
              return true;
            });
  }
}

template <typename T>
void CheckDtype(Context& ctx, Rng& rng, gpu::GemmHandle& gemm) {
  if (ctx.Selected("embedding")) CheckEmbedding<T>(ctx, rng);
  if (ctx.Selected("rmsnorm")) CheckRmsNorm<T>(ctx, rng);
  if (ctx.Selected("rope")) CheckRope<T>(ctx, rng);
  if (ctx.Selected("kv_cache_write")) CheckKvWrite<T>(ctx, rng);
  if (ctx.Selected("paged_attention")) CheckAttention<T>(ctx, rng);
  if (ctx.Selected("silu_and_mul")) CheckSilu<T>(ctx, rng);
  if (ctx.Selected("gemm")) CheckGemm<T>(ctx, rng, gemm);
  if (ctx.Selected("argmax")) CheckArgmax<T>(ctx, rng);
  if (ctx.Selected("convert")) CheckConvert<T>(ctx, rng);
}

}  // namespace

void RunKernelChecks(Context& ctx) {
  Rng rng(ctx.seed);
  std::unique_ptr<gpu::GemmHandle> gemm;
  const kernels::KernelStatus st = gpu::GemmHandle::Create(gpu::GemmHandle::kDefaultWorkspaceBytes, &gemm);
  if (!st.ok()) {
    ctx.Record(CaseResult{"gemm", "-", "GemmHandle::Create", NAN, 0.0, false, st.message()});
    return;
  }
  CheckDtype<float>(ctx, rng, *gemm);
  CheckDtype<__nv_bfloat16>(ctx, rng, *gemm);
  CheckDtype<__half>(ctx, rng, *gemm);
}

}  // namespace kaon::gpucheck
