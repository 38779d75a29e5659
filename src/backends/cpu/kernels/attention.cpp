// CPU reference kernels for attention: prefill SDPA, decode partials over KV chunks and their
// log-sum-exp merge. Plain two-pass softmax in double: this is the oracle the CUDA kernels are
// checked against, so it favours clarity over speed.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/kernels/attention_kernels.h"
#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/thread_pool.h"
#include "ops/attention_params.h"

namespace mlxn::cpu {
namespace {

using ops::AttentionParams;

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

bool visible(const AttentionParams& p, std::int64_t q_pos, std::int64_t k_pos) {
  if (p.causal && k_pos > q_pos) return false;
  if (p.window > 0 && k_pos <= q_pos - p.window) return false;
  return true;
}

// Softmax state of one query head over slots [s0, s1): max logit m, sum l of exp(logit - m) and
// acc[d] = sum of exp(logit - m) * v[d]. m = -inf, l = 0, acc = 0 when no slot is visible.
struct Partial {
  double m = kNegInf;
  double l = 0.0;
  std::vector<double> acc;
  std::vector<double> logits;  // scratch, reused across calls
};

template <class Tio, class Tkv>
void attend(const AttentionParams& p, const Tio* q, const Tkv* k, const Tkv* v, std::int64_t q_pos,
            std::int64_t s0, std::int64_t s1, Partial& out) {
  const std::int64_t dim = p.head_dim;
  out.m = kNegInf;
  out.l = 0.0;
  out.acc.assign(dim, 0.0);
  out.logits.assign(s1 - s0, kNegInf);
  for (std::int64_t s = s0; s < s1; ++s) {
    if (!visible(p, q_pos, ops::attention_slot_position(s, p.kv_len, p.capacity))) continue;
    const Tkv* kr = k + s * p.kv_token_stride;
    double dot = 0.0;
    for (std::int64_t d = 0; d < dim; ++d) dot += double(to_f32(q[d])) * double(to_f32(kr[d]));
    double x = double(p.scale) * dot;
    if (p.softcap > 0.0f) x = double(p.softcap) * std::tanh(x / double(p.softcap));
    out.logits[s - s0] = x;
    out.m = std::max(out.m, x);
  }
  if (out.m == kNegInf) return;
  for (std::int64_t s = s0; s < s1; ++s) {
    if (out.logits[s - s0] == kNegInf) continue;
    const double w = std::exp(out.logits[s - s0] - out.m);
    out.l += w;
    const Tkv* vr = v + s * p.kv_token_stride;
    for (std::int64_t d = 0; d < dim; ++d) out.acc[d] += w * double(to_f32(vr[d]));
  }
}

template <class Tio>
void write_normalized(const Partial& part, std::int64_t dim, Tio* dst) {
  for (std::int64_t d = 0; d < dim; ++d) {
    dst[d] = from_f32<Tio>(part.l > 0.0 ? static_cast<float>(part.acc[d] / part.l) : 0.0f);
  }
}

// Grain of parallel_for for items that each scan `slots` keys of `dim` elements.
std::int64_t grain_for(std::int64_t slots, std::int64_t dim) {
  return std::max<std::int64_t>(1, (1 << 16) / std::max<std::int64_t>(1, slots * dim));
}

// Bindings q, k, v, out. One item per (query token, query head).
template <class Tio, class Tkv>
void prefill(const KernelArgs& a) {
  const auto& p = a.params_as<AttentionParams>();
  const Tio* q = a.ptr<const Tio>(0);
  const Tkv* k = a.ptr<const Tkv>(1);
  const Tkv* v = a.ptr<const Tkv>(2);
  Tio* out = a.ptr<Tio>(3);
  const std::int64_t group = p.n_heads / p.n_kv_heads;
  parallel_for(
      p.n_q * p.n_heads, grain_for(p.n_slots, p.head_dim), [&](std::int64_t lo, std::int64_t hi) {
        Partial part;
        for (std::int64_t item = lo; item < hi; ++item) {
          const std::int64_t i = item / p.n_heads, h = item % p.n_heads;
          const std::int64_t kv_off = (h / group) * p.kv_head_stride;
          attend(p, q + i * p.q_token_stride + h * p.head_dim, k + kv_off, v + kv_off, p.q_pos0 + i,
                 0, p.n_slots, part);
          write_normalized(part, p.head_dim, out + i * p.out_token_stride + h * p.head_dim);
        }
      });
}

// Bindings q, k, v, dst. One item per (query head, chunk); dst is out when n_chunks == 1, else the
// f32 workspace laid out as AttentionParams describes.
template <class Tio, class Tkv>
void decode(const KernelArgs& a) {
  const auto& p = a.params_as<AttentionParams>();
  const Tio* q = a.ptr<const Tio>(0);
  const Tkv* k = a.ptr<const Tkv>(1);
  const Tkv* v = a.ptr<const Tkv>(2);
  const std::int64_t group = p.n_heads / p.n_kv_heads;
  const std::int64_t n_chunks = p.n_chunks;
  parallel_for(p.n_heads * n_chunks, grain_for(p.chunk_size, p.head_dim),
               [&](std::int64_t lo, std::int64_t hi) {
                 Partial part;
                 for (std::int64_t item = lo; item < hi; ++item) {
                   const std::int64_t h = item / n_chunks, c = item % n_chunks;
                   const std::int64_t s0 = c * p.chunk_size;
                   const std::int64_t s1 = std::min(p.n_slots, s0 + p.chunk_size);
                   const std::int64_t kv_off = (h / group) * p.kv_head_stride;
                   attend(p, q + h * p.head_dim, k + kv_off, v + kv_off, p.q_pos0, s0, s1, part);
                   if (n_chunks == 1) {
                     write_normalized(part, p.head_dim, a.ptr<Tio>(3) + h * p.head_dim);
                     continue;
                   }
                   float* ws = a.ptr<float>(3);
                   float* acc = ws + item * p.head_dim;
                   for (std::int64_t d = 0; d < p.head_dim; ++d) acc[d] = float(part.acc[d]);
                   float* ml = ws + p.n_heads * n_chunks * p.head_dim + item * 2;
                   ml[0] = float(part.m);
                   ml[1] = float(part.l);
                 }
               });
}

// Bindings ws, out: out[h, d] = sum_c e^(m_c - M) acc_c[d] / sum_c e^(m_c - M) l_c.
template <class Tio>
void decode_merge(const KernelArgs& a) {
  const auto& p = a.params_as<AttentionParams>();
  const float* ws = a.ptr<const float>(0);
  Tio* out = a.ptr<Tio>(1);
  const std::int64_t n_chunks = p.n_chunks;
  const float* ml = ws + p.n_heads * n_chunks * p.head_dim;
  for (std::int64_t h = 0; h < p.n_heads; ++h) {
    double big = kNegInf;
    for (std::int64_t c = 0; c < n_chunks; ++c)
      big = std::max(big, double(ml[(h * n_chunks + c) * 2]));
    Partial merged;
    merged.acc.assign(p.head_dim, 0.0);
    for (std::int64_t c = 0; c < n_chunks; ++c) {
      const double m = ml[(h * n_chunks + c) * 2];
      if (m == kNegInf) continue;
      const double w = std::exp(m - big);
      merged.l += w * ml[(h * n_chunks + c) * 2 + 1];
      const float* acc = ws + (h * n_chunks + c) * p.head_dim;
      for (std::int64_t d = 0; d < p.head_dim; ++d) merged.acc[d] += w * acc[d];
    }
    write_normalized(merged, p.head_dim, out + h * p.head_dim);
  }
}

template <template <class, class> class Kernel>
KernelFn by_io_kv(DType io, DType kv) {
  return dispatch_float<KernelFn>(io, [kv](auto io_tag) {
    return dispatch_float<KernelFn>(kv, [](auto kv_tag) {
      return static_cast<KernelFn>(
          &Kernel<typename decltype(io_tag)::type, typename decltype(kv_tag)::type>::run);
    });
  });
}

template <class Tio, class Tkv>
struct PrefillK {
  static void run(const KernelArgs& a) { prefill<Tio, Tkv>(a); }
};
template <class Tio, class Tkv>
struct DecodeK {
  static void run(const KernelArgs& a) { decode<Tio, Tkv>(a); }
};

// Factory over spec io, kv (head_dim is a run-time parameter on the CPU).
KernelFactory io_kv_factory(KernelFn (*make)(DType, DType)) {
  return [make](const Specialization& spec) -> const void* {
    return reinterpret_cast<const void*>(
        make(dtype_from_name(spec.get("io")), dtype_from_name(spec.get("kv"))));
  };
}

}  // namespace

KernelFn attention_prefill_kernel(DType io, DType kv) {
  return by_io_kv<PrefillK>(io, kv);
}

KernelFn attention_decode_kernel(DType io, DType kv) {
  return by_io_kv<DecodeK>(io, kv);
}

KernelFn attention_decode_merge_kernel(DType io) {
  return dispatch_float<KernelFn>(io, [](auto tag) {
    return static_cast<KernelFn>(&decode_merge<typename decltype(tag)::type>);
  });
}

void register_attention_kernels(KernelRegistry& registry) {
  registry.register_factory("attention_prefill", io_kv_factory(&attention_prefill_kernel));
  registry.register_factory("attention_decode", io_kv_factory(&attention_decode_kernel));
  registry.register_factory("attention_decode_merge", [](const Specialization& spec) {
    return reinterpret_cast<const void*>(
        attention_decode_merge_kernel(dtype_from_name(spec.get("io"))));
  });
}

}  // namespace mlxn::cpu
