// Helpers of the attention and KV-cache tests: a float64 reference SDPA over the full K/V history
// by position, and runners that build caches with kv_cache_append and call the attention ops.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "mlxn/ops/attention.h"
#include "mlxn/ops/kv_cache.h"
#include "test_backends.h"

namespace mlxn::test {

/// Problem shape: n_q queries (the last of n_kv positions unless stated), n_heads query heads,
/// n_kv_heads K/V heads, head dim.
struct AttnShape {
  std::int64_t n_q, n_kv, n_heads, n_kv_heads, head_dim;
};

inline std::string describe(const AttnShape& s, const ops::AttentionOptions& o) {
  return "n_q=" + std::to_string(s.n_q) + " n_kv=" + std::to_string(s.n_kv) +
         " heads=" + std::to_string(s.n_heads) + "/" + std::to_string(s.n_kv_heads) +
         " d=" + std::to_string(s.head_dim) + (o.causal ? " causal" : " full") +
         " window=" + std::to_string(o.window) + " softcap=" + std::to_string(o.softcap) +
         " scale=" + std::to_string(o.scale);
}

/// Host inputs: q [n_q, n_heads, d]; k, v [n_kv, n_kv_heads, d] by position (the full history).
struct AttnInputs {
  std::vector<float> q, k, v;
};

/// Random inputs representable in `io` (q) and in both `io` and `kv` (k, v: they pass through
/// the compute dtype before the cache), so the reference sees exactly what the kernels see.
inline AttnInputs make_attn_inputs(std::mt19937& rng, const AttnShape& s, DType io, DType kv) {
  AttnInputs in;
  in.q = round_to(io, random_floats(rng, s.n_q * s.n_heads * s.head_dim));
  in.k = round_to(kv, round_to(io, random_floats(rng, s.n_kv * s.n_kv_heads * s.head_dim)));
  in.v = round_to(kv, round_to(io, random_floats(rng, s.n_kv * s.n_kv_heads * s.head_dim)));
  return in;
}

/// SDPA in double: query i at position q_pos0 + i, key j at position j (j < n_kv).
inline std::vector<double> attention_ref(const AttnInputs& in, const AttnShape& s,
                                         std::int64_t q_pos0, const ops::AttentionOptions& o) {
  const std::int64_t d = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const double scale = o.scale > 0 ? o.scale : 1.0 / std::sqrt(double(d));
  std::vector<double> out(s.n_q * s.n_heads * d, 0.0);
  std::vector<double> logits(s.n_kv);
  for (std::int64_t i = 0; i < s.n_q; ++i) {
    const std::int64_t qp = q_pos0 + i;
    for (std::int64_t h = 0; h < s.n_heads; ++h) {
      const float* q = &in.q[(i * s.n_heads + h) * d];
      const std::int64_t g = h / group;
      double big = -std::numeric_limits<double>::infinity();
      for (std::int64_t j = 0; j < s.n_kv; ++j) {
        logits[j] = -std::numeric_limits<double>::infinity();
        if (o.causal && j > qp) continue;
        if (o.window > 0 && j <= qp - o.window) continue;
        const float* k = &in.k[(j * s.n_kv_heads + g) * d];
        double dot = 0;
        for (std::int64_t c = 0; c < d; ++c) dot += double(q[c]) * double(k[c]);
        double x = scale * dot;
        if (o.softcap > 0) x = o.softcap * std::tanh(x / o.softcap);
        logits[j] = x;
        big = std::max(big, x);
      }
      if (std::isinf(big)) continue;  // no visible key: zeros
      double sum = 0;
      double* dst = &out[(i * s.n_heads + h) * d];
      for (std::int64_t j = 0; j < s.n_kv; ++j) {
        if (std::isinf(logits[j])) continue;
        const double w = std::exp(logits[j] - big);
        sum += w;
        const float* v = &in.v[(j * s.n_kv_heads + g) * d];
        for (std::int64_t c = 0; c < d; ++c) dst[c] += w * v[c];
      }
      for (std::int64_t c = 0; c < d; ++c) dst[c] /= sum;
    }
  }
  return out;
}

/// The tolerance of an attention output in `io` (f32 1e-5, f16 2e-3, bf16 1e-2).
inline double attn_tolerance(DType io) {
  return io == DType::F16 ? 2e-3 : io == DType::BF16 ? 1e-2 : 1e-5;
}

/// ops::attention_prefill over fresh K/V on `device`; returns out as f32.
inline std::vector<float> run_prefill(Device& device, const AttnInputs& in, const AttnShape& s,
                                      DType io, DType kv, const ops::AttentionOptions& o) {
  Buffer q = upload(device, in.q, io, {s.n_q, s.n_heads, s.head_dim});
  Buffer k = upload(device, in.k, kv, {s.n_kv, s.n_kv_heads, s.head_dim});
  Buffer v = upload(device, in.v, kv, {s.n_kv, s.n_kv_heads, s.head_dim});
  Buffer out = poisoned(device, io, {s.n_q, s.n_heads, s.head_dim});
  CommandEncoder enc = device.command_encoder();
  ops::attention_prefill(enc, q, k, v, out, o);
  enc.commit_and_wait();
  return download(out);
}

/// A KV cache [n_kv_heads, capacity, d] of dtype `kv`, poisoned, then filled with positions
/// 0..n_kv-1 of `in` by kv_cache_append calls of `step` tokens each (from `io` K/V).
struct TestCache {
  Buffer k, v;
};

inline TestCache build_cache(Device& device, const AttnInputs& in, const AttnShape& s, DType io,
                             DType kv, std::int64_t capacity, bool ring, std::int64_t step) {
  TestCache c{poisoned(device, kv, {s.n_kv_heads, capacity, s.head_dim}),
              poisoned(device, kv, {s.n_kv_heads, capacity, s.head_dim})};
  const std::int64_t row = s.n_kv_heads * s.head_dim;
  CommandEncoder enc = device.command_encoder();
  for (std::int64_t p0 = 0; p0 < s.n_kv; p0 += step) {
    const std::int64_t n = std::min(step, s.n_kv - p0);
    std::vector<float> kn(in.k.begin() + p0 * row, in.k.begin() + (p0 + n) * row);
    std::vector<float> vn(in.v.begin() + p0 * row, in.v.begin() + (p0 + n) * row);
    std::vector<std::int32_t> pos(n);
    for (std::int64_t i = 0; i < n; ++i) pos[i] = static_cast<std::int32_t>(p0 + i);
    Buffer kb = upload(device, kn, io, {n, s.n_kv_heads, s.head_dim});
    Buffer vb = upload(device, vn, io, {n, s.n_kv_heads, s.head_dim});
    Buffer pb = device.alloc(DType::I32, {n});
    pb.write(pos);
    ops::kv_cache_append(enc, kb, vb, pb, c.k, c.v, ring);
    enc.barrier();
  }
  enc.commit_and_wait();
  return c;
}

/// ops::attention_prefill_cached: the last n_q of n_kv positions attend through the cache.
inline std::vector<float> run_prefill_cached(Device& device, const TestCache& c,
                                             const AttnInputs& in, const AttnShape& s, DType io,
                                             const ops::AttentionOptions& o) {
  Buffer q = upload(device, in.q, io, {s.n_q, s.n_heads, s.head_dim});
  Buffer out = poisoned(device, io, {s.n_q, s.n_heads, s.head_dim});
  CommandEncoder enc = device.command_encoder();
  ops::attention_prefill_cached(enc, q, c.k, c.v, s.n_kv, s.n_kv - s.n_q, out, o);
  enc.commit_and_wait();
  return download(out);
}

/// ops::attention_decode of query row `q_row` of `in` (n_heads x d) at position kv_len - 1.
inline std::vector<float> run_decode(Device& device, const TestCache& c,
                                     const std::vector<float>& q_row, const AttnShape& s,
                                     std::int64_t kv_len, DType io, const ops::DecodeOptions& o) {
  Buffer q = upload(device, q_row, io, {s.n_heads, s.head_dim});
  Buffer out = poisoned(device, io, {s.n_heads, s.head_dim});
  CommandEncoder enc = device.command_encoder();
  ops::attention_decode(enc, q, c.k, c.v, kv_len, out, o);
  enc.commit_and_wait();
  return download(out);
}

/// Rows [first, first + count) of a [rows, n_heads, d] tensor.
template <class T>
std::vector<T> rows_of(const std::vector<T>& x, const AttnShape& s, std::int64_t first,
                       std::int64_t count) {
  const std::int64_t row = s.n_heads * s.head_dim;
  return std::vector<T>(x.begin() + first * row, x.begin() + (first + count) * row);
}

}  // namespace mlxn::test
