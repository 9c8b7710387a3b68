#include "server/backend/cpu/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/sampling.h"
#include "kernels/cpu/thread_pool.h"
#include "server/backend/cpu/sampler_kernels.h"
#include "server/common/status.h"

namespace kaon {
namespace {

using sampler_kernels::Argmax;
using sampler_kernels::Better;
using sampler_kernels::Cand;
using sampler_kernels::Collector;
using sampler_kernels::Extract;
using sampler_kernels::FlatRange;
using sampler_kernels::HasAvx2;
using sampler_kernels::Histogram;
using sampler_kernels::Hot;
using sampler_kernels::kBlock;
using sampler_kernels::kChunk;
using sampler_kernels::kNegInf;
using sampler_kernels::Level;
using sampler_kernels::MassCollect;
using sampler_kernels::MassCutoff;
using sampler_kernels::Max;
using sampler_kernels::MaxCollect;
using sampler_kernels::MinFinite;

constexpr int32_t kDefaultFlatBuckets = 2048;  // CpuSampler::Tuning::flat_buckets
constexpr uint8_t kSeen = 1;   // in prompt ∪ output (repetition penalty)
constexpr uint8_t kSaved = 2;  // raw value saved before an in-place edit

}  // namespace

// ---------------------------------------------------------------------------
// One thread's scratch and the per-row pipeline.

class RowSampler {
 public:
  explicit RowSampler(int64_t vocab)
      : vocab_(vocab),
        cand_(vocab + 2 * kBlock),
        counts_(vocab, 0),
        flags_(vocab, 0),
        hot_keys_(kChunk + 8),
        hot_ids_(kChunk + 8),
        hot_{hot_keys_.data(), hot_ids_.data()} {
    touched_.reserve(vocab);  // at most one entry per distinct id
    saved_.reserve(vocab);
    mass_.reserve(kDefaultFlatBuckets);
  }

  // As the constructor sizes the buffers (the memory plan's figure).
  static int64_t PlannedBytes(int64_t vocab) {
    return (vocab + 2 * kBlock) * static_cast<int64_t>(sizeof(Cand)) +
           vocab * static_cast<int64_t>(sizeof(int32_t) + sizeof(uint8_t) + sizeof(int32_t) +
                                        sizeof(std::pair<int32_t, float>)) +
           (kChunk + 8) * static_cast<int64_t>(sizeof(float) + sizeof(int32_t)) +
           kDefaultFlatBuckets * static_cast<int64_t>(sizeof(double));
  }

  // Candidates a top-m collector holds before compacting: slack of at least
  // m keeps a large k amortised O(vocab) (each compaction halves the buffer);
  // tests set a fixed slack to force compactions.
  int64_t TopKCap(int64_t m) const {
    const int64_t slack = tuning.topk_slack > 0 ? tuning.topk_slack : std::max<int64_t>(256, m);
    return std::min<int64_t>(vocab_, m + slack);
  }

  // What the buffers hold now.
  int64_t Bytes() const {
    auto bytes = [](const auto& v) { return static_cast<int64_t>(v.capacity() * sizeof(v[0])); };
    return bytes(cand_) + bytes(counts_) + bytes(flags_) + bytes(touched_) + bytes(saved_) + bytes(hot_keys_) +
           bytes(hot_ids_) + bytes(mass_);
  }

  CpuSampler::Tuning tuning;

  void Sample(float* row, int32_t n, const SamplingRow& r, SampleResult* out) {
    avx2_ = HasAvx2() && !tuning.baseline_kernels;
    const bool logprobs = r.logprobs >= 0;
    out->top.clear();
    const double lse = logprobs ? RawLogSumExp(row, r.logprobs, &out->top) : 0.0;
    Penalize(row, n, r, logprobs);
    out->token = r.greedy() ? Argmax(avx2_, row, n, r.allowed) : Draw(row, n, r);
    out->logprob = logprobs ? static_cast<float>(RawValue(row, out->token) - lse) : 0.0f;
    for (const auto& [id, value] : saved_) flags_[id] &= static_cast<uint8_t>(~kSaved);
    saved_.clear();
  }

  void Logprobs(const float* row, int32_t token, int32_t k, float* token_logprob,
                std::vector<TokenLogprob>* top) {
    avx2_ = HasAvx2() && !tuning.baseline_kernels;
    if (top != nullptr) top->clear();
    const double lse = RawLogSumExp(row, top != nullptr ? k : 0, top);
    if (token_logprob != nullptr) {
      KAON_CHECK(token >= 0 && token < vocab_) << "logprob token " << token << " outside vocab " << vocab_;
      *token_logprob = static_cast<float>(row[token] - lse);
    }
  }

 private:
  // log-sum-exp of the raw row (all vocab ids), and its top k into `top`.
  double RawLogSumExp(const float* row, int32_t k, std::vector<TokenLogprob>* top) {
    float max;
    int64_t count = 0;
    if (k > 0) {
      const int64_t m = std::min<int64_t>(k, vocab_);
      Collector c{cand_.data(), m, TopKCap(m), kNegInf};
      max = MaxCollect(avx2_, row, vocab_, nullptr, &c);
      if (c.count > m) c.Full();
      // Fewer than k finite logits: the rest of the top are -inf, lowest ids first.
      for (int32_t id = 0; c.count < m; ++id) {
        if (!(row[id] > kNegInf)) cand_[c.count++] = Cand{kNegInf, id, 0.0f};
      }
      count = c.count;
      std::sort(cand_.begin(), cand_.begin() + count, Better{});
    } else {
      max = Max(avx2_, row, vocab_, nullptr);
    }
    // Float partial sums of at most 32 terms each, added in double: 152k
    // terms keep about 7 digits. An infinite cut-off collects nothing.
    const MassCutoff cut{max, 1.0f, std::numeric_limits<double>::infinity()};
    Collector none{cand_.data(), 0, 0, kNegInf};
    const double lse = max + std::log(MassCollect(avx2_, row, vocab_, nullptr, &cut, &none, &hot_));
    for (int64_t i = 0; i < count; ++i) {
      top->push_back(TokenLogprob{cand_[i].id, static_cast<float>(row[cand_[i].id] - lse)});
    }
    return lse;
  }

  double RawValue(const float* row, int32_t token) const {
    for (const auto& [id, value] : saved_) {
      if (id == token) return value;
    }
    return row[token];
  }

  // Banned ids, logit_bias and penalties, in place: they touch only the few
  // ids named, so the row passes that follow see the processed logits. The
  // allowed mask is applied by those passes instead (everything after it maps
  // -inf to -inf, so the order is unchanged).
  void Penalize(float* row, int32_t n, const SamplingRow& r, bool save_raw) {
    auto edit = [&](int32_t id) -> float& {
      if (save_raw && !(flags_[id] & kSaved)) {
        flags_[id] |= kSaved;
        saved_.emplace_back(id, row[id]);
      }
      return row[id];
    };
    for (int32_t id : r.banned_ids) {
      if (id >= 0 && id < n) edit(id) = kNegInf;
    }
    for (const auto& [id, bias] : r.logit_bias) {
      if (id >= 0 && id < n) edit(id) += bias;
    }
    auto check = [&](int32_t id) {
      KAON_CHECK(id >= 0 && id < vocab_) << "token id " << id << " outside vocab " << vocab_;
    };
    if (r.repetition_penalty != 1.0f) {
      // Once per distinct id of prompt ∪ output, as vLLM's prompt/output masks.
      touched_.clear();
      for (auto ids : {r.prompt_ids, r.output_ids}) {
        for (int32_t id : ids) {
          check(id);
          if (!(flags_[id] & kSeen)) {
            flags_[id] |= kSeen;
            touched_.push_back(id);
          }
        }
      }
      const float rp = r.repetition_penalty;
      for (int32_t id : touched_) {
        flags_[id] &= static_cast<uint8_t>(~kSeen);
        if (id >= n) continue;
        float& l = edit(id);
        l = l > 0.0f ? l / rp : l * rp;
      }
    }
    if (r.frequency_penalty != 0.0f || r.presence_penalty != 0.0f) {
      touched_.clear();
      for (int32_t id : r.output_ids) {
        check(id);
        if (counts_[id]++ == 0) touched_.push_back(id);
      }
      for (int32_t id : touched_) {
        if (id < n) {
          // Two steps, as vLLM: subtract frequency * count, then presence.
          float& l = edit(id);
          l -= r.frequency_penalty * static_cast<float>(counts_[id]);
          l -= r.presence_penalty;
        }
        counts_[id] = 0;
      }
    }
  }

  float Weight(float key) const { return SamplingWeight(key, max_, inv_t_); }
  bool Kept(float w) const { return !(w <= 0.0f || w < min_p_); }  // zero weight or under min_p: dropped

  // temperature → min_p → top_k → top_p → inverse-CDF draw, over candidates
  // that provably hold every token the reference would keep (see the cases).
  int32_t Draw(const float* row, int32_t n, const SamplingRow& r) {
    row_ = row;
    n_ = n;
    allowed_ = r.allowed;
    temperature_ = r.temperature;
    inv_t_ = 1.0f / r.temperature;
    min_p_ = r.min_p;
    const float u = kernels::cpu::Philox4x32::Uniform(r.seed, static_cast<uint64_t>(r.sample_index),
                                                      static_cast<uint64_t>(r.output_position));
    Cand* buf = cand_.data();
    double total = 0.0;
    if (r.top_k > 0 && r.top_k < n) {
      // Only the k best can be kept; k + 1 tell whether min_p left more
      // than k (then the reference sums the k best-first, else by id).
      const int64_t m = static_cast<int64_t>(r.top_k) + 1;
      Collector c{buf, m, TopKCap(m), kNegInf};
      max_ = MaxCollect(avx2_, row, n, allowed_, &c);
      if (!std::isfinite(max_)) return Argmax(avx2_, row, n, allowed_);
      if (c.count > m) c.Full();
      for (int64_t i = 0; i < c.count; ++i) buf[i].w = Weight(buf[i].key);
      std::sort(buf, buf + c.count, Better{});
      int64_t kept = 0;  // the weight falls with the logit, so min_p cuts a suffix
      while (kept < c.count && Kept(buf[kept].w)) ++kept;
      if (kept > r.top_k) {
        kept = r.top_k;
        for (int64_t i = 0; i < kept; ++i) total += buf[i].w;
      } else {
        std::sort(buf, buf + kept, [](const Cand& a, const Cand& b) { return a.id < b.id; });
        for (int64_t i = 0; i < kept; ++i) total += buf[i].w;
        std::sort(buf, buf + kept, Better{});
      }
      end_ = sorted_ = kept;
      complete_ = true;
    } else {
      max_ = Max(avx2_, row, n, allowed_);
      // Everything masked, or a logit overflowed to +inf: nothing to
      // normalise, so take the argmax (lowest id among the best).
      if (!std::isfinite(max_)) return Argmax(avx2_, row, n, allowed_);
      // Past flat_candidates the row is flat: bucket it instead.
      Collector c{buf, 0, std::max<int64_t>(1, tuning.flat_candidates), kNegInf};
      double rest = 0.0;
      if (r.min_p > 0.0f) {
        // Every kept token weighs >= min_p: the candidates are all of them.
        c.thr = Level(max_, temperature_, r.min_p);
        MaxCollect(avx2_, row, n, allowed_, &c);
      } else {
        // A kept token has mass above it < p * total (top_p), or <= u * total
        // for the drawn one (no top_p), so the mass at or below it, at most
        // n times its weight, is > (1 - p) * total: weights under
        // (1 - p) * total / n need no sorting. They only add to the total.
        const double p = r.top_p < 1.0f ? r.top_p : u;
        const MassCutoff cut{max_, temperature_, (1.0 - p) / n * tuning.cutoff_scale};
        rest = MassCollect(avx2_, row, n, allowed_, &cut, &c, &hot_);
      }
      if (c.overflow) return DrawFlat(row, n, r, u);
      level_ = c.thr;
      // Exact weights, in id order as the reference sums them; ids taken
      // under an earlier, lower cut-off join the rest.
      int64_t kept = 0;
      for (int64_t i = 0; i < c.count; ++i) {
        Cand x = buf[i];
        x.w = Weight(x.key);
        if (!(x.key > level_)) {
          rest += Kept(x.w) ? x.w : 0.0f;
        } else if (Kept(x.w)) {
          total += x.w;
          buf[kept++] = x;
        }
      }
      total += rest;
      end_ = kept;
      sorted_ = 0;
      complete_ = r.min_p > 0.0f;
    }
    appended_ = false;
    const int32_t token = Walk(r.top_p, u, total);
    // The rest was needed: its scan summed the exact total in id order, as
    // the reference does, so redo the walk with it for identical decisions.
    return appended_ ? Walk(r.top_p, u, exact_total_) : token;
  }

  // A row where thousands of tokens weigh something (a random or undertrained
  // model, a high temperature): sorting them would cost ~100x a pass over the
  // row. Instead one pass sums the kept weights into buckets by logit (best
  // first), and only the bucket where the top_p walk ends and the one where
  // the draw lands are extracted and sorted. The sums differ from a token-by-
  // token walk only in double rounding (~1e-16 of the total).
  int32_t DrawFlat(const float* row, int32_t n, const SamplingRow& r, float u) {
    const int32_t buckets = std::max(1, tuning.flat_buckets);
    // Logits under max - 88 T weigh 0 and under the min_p level are not kept:
    // no bucket is spent on them.
    float lo = std::max(MinFinite(avx2_, row, n, allowed_), max_ - 88.0f * temperature_);
    if (min_p_ > 0.0f) lo = std::max(lo, Level(max_, temperature_, min_p_));
    const float span = max_ - lo;
    flat_ = FlatRange{max_, inv_t_, min_p_,
                      span > 0.0f && std::isfinite(span) ? static_cast<float>(buckets) / span : 0.0f,
                      static_cast<float>(buckets - 1)};
    mass_.assign(buckets, 0.0);
    Histogram(avx2_, row, n, allowed_, &flat_, mass_.data());
    extracted_ = -1;
    // top_p: keep tokens while the mass above them is below top_p * total.
    int32_t cut_bucket = buckets;  // buckets before it are kept whole
    int64_t cut_count = 0;         // of its sorted tokens, the first cut_count are kept
    int32_t last_kept = -1;
    double kept_total = 0.0;
    for (double m : mass_) kept_total += m;
    if (r.top_p < 1.0f) {
      const double threshold = static_cast<double>(r.top_p) * kept_total;
      double cum = 0.0;
      for (int32_t b = 0; b < buckets && cut_bucket == buckets; ++b) {
        if (mass_[b] == 0.0) continue;
        if (cum + mass_[b] < threshold) {
          cum += mass_[b];
          continue;
        }
        const int64_t count = ExtractSorted(row, n, b);
        int64_t i = 0;
        while (i < count && cum < threshold) cum += cand_[i++].w;
        if (i < count || !(cum < threshold)) {
          cut_bucket = b;
          cut_count = i;
          last_kept = cand_[i - 1].id;
        }
      }
      kept_total = cum;
    }
    const double target = static_cast<double>(u) * kept_total;
    double cum = 0.0;
    for (int32_t b = 0; b <= std::min(cut_bucket, buckets - 1); ++b) {
      if (mass_[b] == 0.0) continue;
      if (b < cut_bucket && !(target < cum + mass_[b])) {
        cum += mass_[b];
        continue;
      }
      const int64_t extracted = ExtractSorted(row, n, b);
      const int64_t count = b == cut_bucket ? cut_count : extracted;
      for (int64_t i = 0; i < count; ++i) {
        cum += cand_[i].w;
        if (target < cum) return cand_[i].id;
      }
      if (count > 0 && b == cut_bucket) return cand_[count - 1].id;
    }
    // Only reached through rounding: the worst kept token, as the walk's end.
    if (last_kept >= 0) return last_kept;
    for (int32_t b = buckets - 1; b >= 0; --b) {
      if (mass_[b] > 0.0) {
        const int64_t count = ExtractSorted(row, n, b);
        if (count > 0) return cand_[count - 1].id;
      }
    }
    return Argmax(avx2_, row, n, allowed_);
  }

  // Bucket b's kept tokens into cand_, best first.
  int64_t ExtractSorted(const float* row, int32_t n, int32_t b) {
    if (extracted_ == b) return extracted_count_;
    Cand* buf = cand_.data();
    const int64_t count = Extract(avx2_, row, n, allowed_, &flat_, b, buf);
    // In id order already; equal logits (a quantised row) need no sort.
    bool equal = true;
    for (int64_t i = 1; i < count && equal; ++i) equal = buf[i].key == buf[0].key;
    if (!equal) std::sort(buf, buf + count, Better{});
    extracted_ = b;
    extracted_count_ = count;
    return count;
  }

  int32_t Walk(float top_p, float u, double total) {
    const Cand* buf = cand_.data();
    limit_ = std::numeric_limits<int64_t>::max();
    if (top_p < 1.0f) {
      // vLLM keeps a token while the mass strictly above it is below top_p.
      const double threshold = static_cast<double>(top_p) * total;
      double cum = 0.0;
      int64_t i = 0;
      while (cum < threshold && Has(i)) cum += WeightAt(i++);
      limit_ = i;
      total = cum;
    }
    const double target = static_cast<double>(u) * total;
    double cum = 0.0;
    for (int64_t i = 0; Has(i); ++i) {
      cum += WeightAt(i);
      if (target < cum) return buf[i].id;
    }
    // Only reached through rounding of `total`.
    return buf[std::min(limit_, end_) - 1].id;
  }

  // Whether the i-th best kept token exists; past the candidates, appends the
  // rest of the kept tokens (all ranked below every candidate).
  bool Has(int64_t i) {
    if (i >= limit_) return false;
    if (i < end_) return true;
    if (complete_) return false;
    complete_ = appended_ = true;
    exact_total_ = 0.0;
    for (int32_t id = 0; id < n_; ++id) {
      if (allowed_ != nullptr && !((allowed_[id / 32] >> (id % 32)) & 1u)) continue;
      const float key = row_[id];
      if (!(key > kNegInf)) continue;
      const float w = Weight(key);
      if (!Kept(w)) continue;
      exact_total_ += w;
      if (!(key > level_)) cand_[end_++] = Cand{key, id, w};
    }
    return i < end_;
  }

  // The i-th best candidate's weight, sorting lazily in growing blocks: the
  // probability mass sits in the first few, so most draws sort very little.
  double WeightAt(int64_t i) {
    if (i >= sorted_) {
      const int64_t count = std::min(end_, std::max<int64_t>(2 * sorted_, 64));
      Cand* first = cand_.data() + sorted_;
      Cand* mid = cand_.data() + count;
      Cand* last = cand_.data() + end_;
      if (mid < last) std::nth_element(first, mid, last, Better{});
      std::sort(first, mid, Better{});
      sorted_ = count;
    }
    return cand_[i].w;
  }

  int64_t vocab_;
  std::vector<Cand> cand_;
  std::vector<int32_t> counts_;  // output-token occurrences, by id (zero between calls)
  std::vector<uint8_t> flags_;   // kSeen | kSaved, by id (zero between calls)
  std::vector<int32_t> touched_;
  std::vector<std::pair<int32_t, float>> saved_;  // raw values of edited ids, when logprobs are wanted
  std::vector<float> hot_keys_;
  std::vector<int32_t> hot_ids_;
  Hot hot_;

  bool avx2_ = false;
  // The row being drawn from.
  const float* row_ = nullptr;
  int32_t n_ = 0;
  const uint32_t* allowed_ = nullptr;
  float max_ = 0.0f, temperature_ = 1.0f, inv_t_ = 1.0f, min_p_ = 0.0f;
  float level_ = kNegInf;  // candidates are exactly the kept ids above this
  int64_t end_ = 0;        // candidates held in cand_
  int64_t sorted_ = 0;     // cand_[0, sorted_) is sorted and precedes the rest
  int64_t limit_ = 0;      // kept count once top_p has cut
  bool complete_ = false;  // cand_ holds every kept token
  bool appended_ = false;  // this draw scanned the row for the rest
  double exact_total_ = 0.0;
  // DrawFlat's buckets.
  FlatRange flat_{};
  std::vector<double> mass_;
  int32_t extracted_ = -1;  // the bucket cand_ holds
  int64_t extracted_count_ = 0;
};

// ---------------------------------------------------------------------------

CpuSampler::CpuSampler(int64_t vocab_size, kernels::cpu::ThreadPool* pool) : vocab_size_(vocab_size), pool_(pool) {
  KAON_CHECK(vocab_size > 0 && vocab_size <= std::numeric_limits<int32_t>::max()) << vocab_size;
  const int threads = pool != nullptr ? pool->num_threads() : 1;
  for (int i = 0; i < threads; ++i) threads_.push_back(std::make_unique<RowSampler>(vocab_size));
}

static_assert(CpuSampler::Tuning{}.flat_buckets == kDefaultFlatBuckets);

int64_t CpuSampler::ScratchBytes(int64_t vocab_size, int num_threads) {
  return std::max(1, num_threads) * RowSampler::PlannedBytes(vocab_size);
}

int64_t CpuSampler::scratch_bytes() const {
  int64_t total = 0;
  for (const auto& t : threads_) total += t->Bytes();
  return total;
}

CpuSampler::~CpuSampler() = default;

void CpuSampler::set_tuning_for_test(const Tuning& tuning) {
  for (auto& t : threads_) t->tuning = tuning;
}

void CpuSampler::Sample(float* logits, int32_t sampleable_vocab, std::span<const SamplingRow> rows, SampleResult* out) {
  KAON_CHECK(sampleable_vocab > 0 && sampleable_vocab <= vocab_size_)
      << "sampleable_vocab " << sampleable_vocab << " not in [1, " << vocab_size_ << "]";
  struct Job {
    CpuSampler* self;
    float* logits;
    int32_t sampleable_vocab;
    std::span<const SamplingRow> rows;
    SampleResult* out;
  } job{this, logits, sampleable_vocab, rows, out};
  // One pointer captured: std::function stores it without allocating.
  const Job* j = &job;
  kernels::cpu::ParallelFor(pool_, static_cast<int64_t>(rows.size()), [j](int64_t begin, int64_t end, int t) {
    RowSampler& rs = *j->self->threads_[t];
    for (int64_t i = begin; i < end; ++i) {
      rs.Sample(j->logits + i * j->self->vocab_size_, j->sampleable_vocab, j->rows[i], &j->out[i]);
    }
  });
}

void CpuSampler::Logprobs(const float* logits, int32_t token, int32_t k, float* token_logprob,
                          std::vector<TokenLogprob>* top) {
  threads_[0]->Logprobs(logits, token, k, token_logprob, top);
}

}  // namespace kaon
