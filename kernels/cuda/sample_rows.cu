#include "kernels/cuda/sample_rows.h"

#include "kernels/common/philox.h"
#include "kernels/common/sampling_math.h"
#include "kernels/cuda/dtype.cuh"
#include "kernels/cuda/launch.h"

namespace kaon::kernels::gpu {
namespace {

using sampling::Boundary;
using sampling::RowScale;

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxTop = kMaxSampleRowsTopLogprobs;
constexpr int64_t kScratchAlign = 256;

int64_t RoundUp(int64_t n, int64_t a) { return (n + a - 1) / a * a; }
// Per-row strides of the two scratch areas, in elements.
int64_t WorkStride(int64_t vocab) { return RoundUp(vocab * 4, kScratchAlign) / 4; }
int64_t SeenStride(int64_t vocab) { return RoundUp((vocab + 31) / 32 * 4, kScratchAlign) / 4; }

struct Shared {
  uint32_t hist_count[256];
  unsigned long long hist_mass[256];
  // Reductions: one slot per warp.
  float red_f[kWarps];
  int red_i[kWarps];
  unsigned long long red_a[kWarps], red_b[kWarps];
  // A select's digit, broadcast by warp 0.
  int digit;
  unsigned long long before_value, before_mass, group_count, group_mass;
  int nth_id;
  // The raw top-k gather.
  int top_count;
  uint32_t top_key[kMaxTop];
  int32_t top_id[kMaxTop];
};

// ---------------------------------------------------------------------------
// Block reductions. Each thread gets the result; all are order-independent
// (max of non-NaN values, integer sums, an argmax by (value, id)).

__device__ float BlockMax(float v, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) {
    const float x = __shfl_xor_sync(0xffffffffu, v, o);
    v = x > v ? x : v;
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0) s.red_f[threadIdx.x >> 5] = v;
  __syncthreads();
  float m = s.red_f[0];
  for (int w = 1; w < kWarps; ++w) m = s.red_f[w] > m ? s.red_f[w] : m;
  return m;
}

__device__ void BlockSum2(unsigned long long& a, unsigned long long& b, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) {
    a += __shfl_xor_sync(0xffffffffu, a, o);
    b += __shfl_xor_sync(0xffffffffu, b, o);
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0) {
    s.red_a[threadIdx.x >> 5] = a;
    s.red_b[threadIdx.x >> 5] = b;
  }
  __syncthreads();
  a = b = 0;
  for (int w = 0; w < kWarps; ++w) {
    a += s.red_a[w];
    b += s.red_b[w];
  }
}

// Larger value first, then lower id; id -1 (nothing yet) loses to anything.
__device__ bool Better(float v, int i, float bv, int bi) {
  if (i < 0) return false;
  if (bi < 0) return true;
  return v > bv || (v == bv && i < bi);
}

// The lowest id among the largest of w[0, n); NaN and -inf never win; 0 when
// nothing does (every value -inf or NaN), as the twin.
__device__ int BlockArgmax(const float* w, int n, Shared& s) {
  float bv = 0.0f;
  int bi = -1;
  for (int i = threadIdx.x; i < n; i += kThreads) {
    const float v = w[i];
    if (v > sampling::NegInf() && Better(v, i, bv, bi)) {
      bv = v;
      bi = i;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (Better(ov, oi, bv, bi)) {
      bv = ov;
      bi = oi;
    }
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0) {
    s.red_f[threadIdx.x >> 5] = bv;
    s.red_i[threadIdx.x >> 5] = bi;
  }
  __syncthreads();
  bv = s.red_f[0];
  bi = s.red_i[0];
  for (int w = 1; w < kWarps; ++w) {
    if (Better(s.red_f[w], s.red_i[w], bv, bi)) {
      bv = s.red_f[w];
      bi = s.red_i[w];
    }
  }
  return bi < 0 ? 0 : bi;
}

// ---------------------------------------------------------------------------
// The select primitive (the twin's Select): the first member, best first,
// where the cumulative count or mass reaches `target`, among the members in
// the prefix `b`. Member(i, &key, &mass) says whether id i takes part.

struct Selected {
  bool found;
  Boundary at;
  unsigned long long mass_through;
};

// Warp 0: the digit where the cumulative value first reaches `remaining`.
// Each lane sums eight consecutive digits; a warp scan finds the lane, which
// walks its eight as the twin walks all 256.
__device__ void FindDigit(bool by_mass, unsigned long long remaining, Shared& s) {
  const int lane = threadIdx.x & 31;
  unsigned long long value = 0, mass = 0;
  for (int d = lane * 8; d < lane * 8 + 8; ++d) {
    value += by_mass ? s.hist_mass[d] : s.hist_count[d];
    mass += s.hist_mass[d];
  }
  unsigned long long inc_value = value, inc_mass = mass;
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long v = __shfl_up_sync(0xffffffffu, inc_value, o);
    const unsigned long long m = __shfl_up_sync(0xffffffffu, inc_mass, o);
    if (lane >= o) {
      inc_value += v;
      inc_mass += m;
    }
  }
  const unsigned hit = __ballot_sync(0xffffffffu, inc_value >= remaining);
  if (hit == 0) {
    if (lane == 0) s.digit = -1;
    return;
  }
  if (lane == __ffs(hit) - 1) {
    unsigned long long cum = inc_value - value, cum_mass = inc_mass - mass;
    for (int d = lane * 8; d < lane * 8 + 8; ++d) {
      const unsigned long long v = by_mass ? s.hist_mass[d] : s.hist_count[d];
      if (v > 0 && cum + v >= remaining) {
        s.digit = d;
        s.before_value = cum;
        s.before_mass = cum_mass;
        s.group_count = s.hist_count[d];
        s.group_mass = s.hist_mass[d];
        return;
      }
      cum += v;
      cum_mass += s.hist_mass[d];
    }
  }
}

// The p-th (from 0) member of key `key` in the prefix, in id order.
template <class Member>
__device__ int NthOfKey(int n, const Member& member, const Boundary& b, uint32_t key, unsigned long long p,
                        Shared& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  unsigned long long base = 0;
  for (int start = 0; start < n; start += kThreads) {
    const int i = start + threadIdx.x;
    uint32_t k = 0;
    unsigned long long m = 0;
    const bool hit = i < n && member(i, &k, &m) && k == key && sampling::InPrefix(k, i, b);
    const unsigned bits = __ballot_sync(0xffffffffu, hit);
    __syncthreads();  // red_i may still be read by the previous chunk
    if (lane == 0) s.red_i[warp] = __popc(bits);
    __syncthreads();
    unsigned long long before = base, total = 0;
    for (int w = 0; w < kWarps; ++w) {
      before += w < warp ? s.red_i[w] : 0;
      total += s.red_i[w];
    }
    if (hit && before + __popc(bits & ((1u << lane) - 1u)) == p) s.nth_id = i;
    base += total;
    if (base > p) break;  // uniform: every thread summed the same counts
  }
  __syncthreads();
  return s.nth_id;
}

template <class Member>
__device__ Selected BlockSelect(int n, const Member& member, const Boundary& b, bool by_mass,
                                unsigned long long target, Shared& s) {
  uint32_t prefix = 0, mask = 0;
  unsigned long long remaining = target, before_mass = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    __syncthreads();  // the previous pass's histogram has been read
    for (int d = threadIdx.x; d < 256; d += kThreads) {
      s.hist_count[d] = 0;
      s.hist_mass[d] = 0;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += kThreads) {
      uint32_t key;
      unsigned long long mass;
      if (!member(i, &key, &mass) || (key & mask) != prefix || !sampling::InPrefix(key, i, b)) continue;
      const uint32_t d = (key >> shift) & 0xFFu;
      atomicAdd(&s.hist_count[d], 1u);
      if (mass != 0) atomicAdd(&s.hist_mass[d], mass);
    }
    __syncthreads();
    if (threadIdx.x < 32) FindDigit(by_mass, remaining, s);
    __syncthreads();
    const int digit = s.digit;
    if (digit < 0) return Selected{false, Boundary{sampling::kNoKey, sampling::kNoId}, 0};
    prefix |= static_cast<uint32_t>(digit) << shift;
    mask |= 0xFFu << shift;
    remaining -= s.before_value;
    before_mass += s.before_mass;
  }
  // Equal keys, equal masses: the position in id order follows arithmetically.
  const unsigned long long q = s.group_mass / s.group_count;
  const unsigned long long p = by_mass ? (remaining - 1) / q : remaining - 1;
  const int id = NthOfKey(n, member, b, prefix, p, s);
  return Selected{true, Boundary{prefix, id}, before_mass + (p + 1) * q};
}

// Members of the draw: the processed logits kept by min_p.
struct KeptMember {
  const float* w;
  RowScale scale;
  __device__ bool operator()(int i, uint32_t* key, unsigned long long* mass) const {
    uint64_t m;
    if (!sampling::KeptToken(w[i], scale, key, &m)) return false;
    *mass = m;
    return true;
  }
};

// Members of the raw top-k: every id (NaN ranks as -inf), no mass.
template <typename T>
struct RawMember {
  const T* raw;
  __device__ bool operator()(int i, uint32_t* key, unsigned long long* mass) const {
    *key = sampling::RawRankKey(detail::ToFloat(raw[i]));
    *mass = 0;
    return true;
  }
};

// ---------------------------------------------------------------------------
// Raw logprobs: log_softmax of the raw row (all vocab ids), the token's and
// the top k's, into `slots` entries (past min(k, vocab): -1 and 0).

template <typename T>
__device__ void RawLogprobs(const T* raw, int vocab, int token, int k, int slots, float* token_logprob,
                            int32_t* top_ids, float* top_logprobs, Shared& s) {
  float max = sampling::NegInf();
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    const float v = detail::ToFloat(raw[i]);
    max = v > max ? v : max;
  }
  max = BlockMax(max, s);
  unsigned long long mass = 0, unused = 0;
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    mass += sampling::Mass(sampling::SamplingWeight(detail::ToFloat(raw[i]), max, 1.0f));
  }
  BlockSum2(mass, unused, s);
  const double lse = sampling::LogSumExp(max, mass);
  if (threadIdx.x == 0) *token_logprob = sampling::Logprob(detail::ToFloat(raw[token]), lse);
  const int m = k < vocab ? k : vocab;
  if (m > 0) {
    const RawMember<T> member{raw};
    const Selected last = BlockSelect(vocab, member, Boundary{sampling::kNoKey, sampling::kNoId}, false,
                                      static_cast<unsigned long long>(m), s);
    if (threadIdx.x == 0) s.top_count = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
      const uint32_t key = sampling::RawRankKey(detail::ToFloat(raw[i]));
      if (sampling::InPrefix(key, i, last.at)) {  // exactly m ids
        const int slot = atomicAdd(&s.top_count, 1);
        if (slot < kMaxTop) {
          s.top_key[slot] = key;
          s.top_id[slot] = i;
        }
      }
    }
    __syncthreads();
    // Gathered in any order: each entry's rank is how many rank above it.
    for (int t = threadIdx.x; t < m; t += kThreads) {
      const uint32_t key = s.top_key[t];
      const int32_t id = s.top_id[t];
      int rank = 0;
      for (int j = 0; j < m; ++j) {
        rank += s.top_key[j] < key || (s.top_key[j] == key && s.top_id[j] < id);
      }
      top_ids[rank] = id;
      top_logprobs[rank] = sampling::Logprob(detail::ToFloat(raw[id]), lse);
    }
  }
  for (int i = (m > 0 ? m : 0) + threadIdx.x; i < slots; i += kThreads) {
    top_ids[i] = -1;
    top_logprobs[i] = 0.0f;
  }
}

// ---------------------------------------------------------------------------
// One block per row: masks and penalties into the row's work area, then the
// decision, then the raw logprobs.

template <typename T>
__global__ void __launch_bounds__(kThreads)
    SampleRowsKernel(const T* logits, int vocab, int n, SamplingTable table, float* work, uint32_t* seen,
                     int64_t work_stride, int64_t seen_stride, SampleOutputs out) {
  __shared__ Shared s;
  const int r = blockIdx.x;
  const SamplingRowDesc d = table.rows[r];
  const T* raw = logits + static_cast<int64_t>(r) * vocab;
  float* w = work + r * work_stride;
  uint32_t* bits = seen + r * seen_stride;
  const bool repetition = d.repetition_penalty != 1.0f;
  const bool counted = d.frequency_penalty != 0.0f || d.presence_penalty != 0.0f;
  const int words = (vocab + 31) / 32;

  const uint32_t* allowed = d.allowed_begin >= 0 ? table.allowed + d.allowed_begin : nullptr;
  for (int i = threadIdx.x; i < n; i += kThreads) {
    const bool on = allowed == nullptr || ((allowed[i / 32] >> (i % 32)) & 1u);
    w[i] = on ? detail::ToFloat(raw[i]) : sampling::NegInf();
  }
  if (repetition || counted) {
    for (int i = threadIdx.x; i < words; i += kThreads) bits[i] = 0u;
  }
  __syncthreads();
  for (int j = threadIdx.x; j < d.banned_count; j += kThreads) {
    const int32_t id = table.banned[d.banned_begin + j];
    if (id >= 0 && id < n) w[id] = sampling::NegInf();
  }
  __syncthreads();
  // The first entry of each id applies all of that id's biases, in request
  // order, so duplicates round as the twin's serial loop does.
  const int32_t* bias_ids = table.bias_ids + d.bias_begin;
  const float* bias_values = table.bias_values + d.bias_begin;
  for (int j = threadIdx.x; j < d.bias_count; j += kThreads) {
    const int32_t id = bias_ids[j];
    if (id < 0 || id >= n) continue;
    bool first = true;
    for (int i = 0; i < j && first; ++i) first = bias_ids[i] != id;
    if (!first) continue;
    float v = w[id];
    for (int i = j; i < d.bias_count; ++i) {
      if (bias_ids[i] == id) v = sampling::FAdd(v, bias_values[i]);
    }
    w[id] = v;
  }
  __syncthreads();
  if (repetition || counted) {
    // The thread that first sets an id's bit owns the id and applies all of
    // its penalties: repetition (prompt ∪ output), then frequency, presence.
    const int prompt = repetition ? d.prompt_count : 0;
    const int32_t* out_ids = table.history + d.output_begin;
    for (int j = threadIdx.x; j < prompt + d.output_count; j += kThreads) {
      const int32_t id = j < prompt ? table.history[d.prompt_begin + j] : out_ids[j - prompt];
      if (id < 0 || id >= vocab) continue;  // the packer rejects these
      const uint32_t bit = 1u << (id % 32);
      if (atomicOr(&bits[id / 32], bit) & bit) continue;
      if (id >= n) continue;
      float l = w[id];
      if (repetition) {
        l = l > 0.0f ? sampling::FDiv(l, d.repetition_penalty) : sampling::FMul(l, d.repetition_penalty);
      }
      if (counted) {
        int count = 0;
        for (int k = 0; k < d.output_count; ++k) count += out_ids[k] == id;
        if (count > 0) {
          l = sampling::FSub(l, sampling::FMul(d.frequency_penalty, static_cast<float>(count)));
          l = sampling::FSub(l, d.presence_penalty);
        }
      }
      w[id] = l;
    }
  }
  __syncthreads();

  int token;
  if (d.temperature < sampling::kGreedyTemperature) {
    token = BlockArgmax(w, n, s);
  } else {
    float max = sampling::NegInf();
    for (int i = threadIdx.x; i < n; i += kThreads) max = w[i] > max ? w[i] : max;
    max = BlockMax(max, s);
    if (!sampling::IsFinite(max)) {
      token = BlockArgmax(w, n, s);
    } else {
      const KeptMember member{w, RowScale{max, sampling::FDiv(1.0f, d.temperature), d.min_p}};
      unsigned long long count = 0, total = 0;
      for (int i = threadIdx.x; i < n; i += kThreads) {
        uint32_t key;
        unsigned long long mass;
        if (member(i, &key, &mass)) {
          ++count;
          total += mass;
        }
      }
      BlockSum2(count, total, s);
      Boundary b{sampling::kNoKey, sampling::kNoId};
      if (d.top_k > 0 && static_cast<unsigned long long>(d.top_k) < count) {
        const Selected k = BlockSelect(n, member, b, false, static_cast<unsigned long long>(d.top_k), s);
        b = k.at;
        total = k.mass_through;
      }
      if (d.top_p < 1.0f) {
        const Selected p = BlockSelect(n, member, b, true, sampling::TopPTarget(total, d.top_p), s);
        if (p.found) {  // else every token is kept
          b = p.at;
          total = p.mass_through;
        }
      }
      const float u = Philox4x32Uniform(d.seed, static_cast<uint64_t>(d.sample_index),
                                        static_cast<uint64_t>(d.output_position));
      token = BlockSelect(n, member, b, true, sampling::DrawTarget(total, u), s).at.id;
    }
  }
  if (threadIdx.x == 0) out.tokens[r] = token;
  int32_t* top_ids = out.top_ids + static_cast<int64_t>(r) * out.top_stride;
  float* top_logprobs = out.top_logprobs + static_cast<int64_t>(r) * out.top_stride;
  if (d.logprobs >= 0) {
    const int k = d.logprobs < out.top_stride ? d.logprobs : out.top_stride;
    RawLogprobs(raw, vocab, token, k, out.top_stride, &out.logprobs[r], top_ids, top_logprobs, s);
  } else {
    if (threadIdx.x == 0) out.logprobs[r] = 0.0f;
    for (int i = threadIdx.x; i < out.top_stride; i += kThreads) {
      top_ids[i] = -1;
      top_logprobs[i] = 0.0f;
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    LogprobRowKernel(const T* raw, int vocab, int token, int k, float* token_logprob, int32_t* top_ids,
                     float* top_logprobs) {
  __shared__ Shared s;
  RawLogprobs(raw, vocab, token, k, k, token_logprob, top_ids, top_logprobs, s);
}

}  // namespace

size_t SampleRowsScratchBytes(int64_t max_rows, int64_t vocab) {
  if (max_rows <= 0 || vocab <= 0) return 0;
  return static_cast<size_t>(max_rows) * static_cast<size_t>(WorkStride(vocab) + SeenStride(vocab)) * 4;
}

template <typename T>
KernelStatus SampleRows(const T* logits, int64_t rows, int64_t vocab, int64_t sampleable_vocab,
                        const SamplingTable& table, void* scratch, SampleOutputs out, cudaStream_t stream) {
  KAON_KERNEL_REQUIRE(rows >= 0 && rows <= detail::kMaxGridX, "sample_rows: bad row count");
  KAON_KERNEL_REQUIRE(vocab > 0 && vocab <= sampling::kMaxVocab, "sample_rows: bad shape (need 0 < vocab < 2^20)");
  KAON_KERNEL_REQUIRE(sampleable_vocab > 0 && sampleable_vocab <= vocab,
                      "sample_rows: sampleable_vocab not in [1, vocab]");
  KAON_KERNEL_REQUIRE(table.num_rows == rows, "sample_rows: table rows differ from logits rows");
  KAON_KERNEL_REQUIRE(out.top_stride >= 0 && out.top_stride <= kMaxTop,
                      "sample_rows: top_stride not in [0, kMaxSampleRowsTopLogprobs]");
  if (rows == 0) return KernelStatus::Ok();
  KAON_KERNEL_REQUIRE(logits && scratch && table.rows && out.tokens && out.logprobs, "sample_rows: null pointer");
  KAON_KERNEL_REQUIRE(out.top_stride == 0 || (out.top_ids && out.top_logprobs), "sample_rows: null top outputs");
  KAON_KERNEL_REQUIRE(detail::Aligned<T>(logits) && detail::Aligned<float4>(scratch) &&
                          detail::Aligned<SamplingRowDesc>(table.rows) && detail::Aligned<int32_t>(out.tokens) &&
                          detail::Aligned<float>(out.logprobs) && detail::Aligned<int32_t>(out.top_ids) &&
                          detail::Aligned<float>(out.top_logprobs),
                      "sample_rows: misaligned pointer");
  float* work = static_cast<float*>(scratch);
  uint32_t* seen = reinterpret_cast<uint32_t*>(work + rows * WorkStride(vocab));
  SampleRowsKernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      logits, static_cast<int>(vocab), static_cast<int>(sampleable_vocab), table, work, seen, WorkStride(vocab),
      SeenStride(vocab), out);
  return detail::LaunchStatus("sample_rows");
}

template <typename T>
KernelStatus LogprobRow(const T* logits_row, int64_t vocab, int32_t token, int32_t k, void* scratch,
                        float* token_logprob, int32_t* top_ids, float* top_logprobs, cudaStream_t stream) {
  KAON_KERNEL_REQUIRE(vocab > 0 && vocab <= sampling::kMaxVocab, "logprob_row: bad vocab (need 0 < vocab < 2^20)");
  KAON_KERNEL_REQUIRE(token >= 0 && token < vocab, "logprob_row: token outside the vocabulary");
  KAON_KERNEL_REQUIRE(k >= 0 && k <= kMaxTop, "logprob_row: k not in [0, kMaxSampleRowsTopLogprobs]");
  KAON_KERNEL_REQUIRE(logits_row && token_logprob && (k == 0 || (top_ids && top_logprobs)),
                      "logprob_row: null pointer");
  KAON_KERNEL_REQUIRE(detail::Aligned<T>(logits_row) && detail::Aligned<float>(token_logprob) &&
                          detail::Aligned<int32_t>(top_ids) && detail::Aligned<float>(top_logprobs),
                      "logprob_row: misaligned pointer");
  LogprobRowKernel<T><<<1, kThreads, 0, stream>>>(logits_row, static_cast<int>(vocab), token, k, token_logprob,
                                                  top_ids, top_logprobs);
  return detail::LaunchStatus("logprob_row");
}

#define KAON_INSTANTIATE(T)                                                                                      \
  template KernelStatus SampleRows<T>(const T*, int64_t, int64_t, int64_t, const SamplingTable&, void*,         \
                                      SampleOutputs, cudaStream_t);                                             \
  template KernelStatus LogprobRow<T>(const T*, int64_t, int32_t, int32_t, void*, float*, int32_t*, float*,     \
                                      cudaStream_t);
KAON_GPU_FOR_EACH_DTYPE(KAON_INSTANTIATE)
#undef KAON_INSTANTIATE

}  // namespace kaon::kernels::gpu
