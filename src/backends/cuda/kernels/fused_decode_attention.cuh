// The fused decode step's attention: RoPE of q and of the new k, the KV-cache append, and
// split-KV decode attention over the head-major cache, done by the compute warps of the blocks
// between a layer's q/k/v and o products. A block takes one (KV head, chunk) item: its query
// heads' partial softmax over the chunk's positions; the last block of a KV head to finish merges
// the chunks' partials into the attention output (no second pass over the grid). The float math
// is that of rope_kv_append.cu and attention_decode.cu (q and k rotated and rounded to bf16,
// e^(x - max) with expf, f32 sums), but the scale multiplies q.k rather than q, and sums run in
// another order.
#pragma once

#include <cuda_bf16.h>

#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/fused_decode_layout.cuh"
#include "backends/cuda/kernels/fused_decode_products.cuh"
#include "backends/cuda/kernels/rope_angle.cuh"

namespace mlxn::cuda::fd {

/// Query heads a KV head may serve (the registers hold each one's slice of q and accumulator).
constexpr int kMaxGroup = 4;
static_assert(kMaxGroup == ops::kFdMaxGroup, "the plan's limit (mlxn/ops/fused_decode.h)");
/// Positions a warp reads at a time, each K and V row straight into registers. Measured on the
/// H100 (docs/perf.md, step 25): batches of four rows a warp through shared memory (cp.async) were
/// 6% slower in decode, and the positions' loop is ~1 us of a layer at context 640; the step's
/// cost is in its round trips and counters, not these loads.
constexpr int kRowsInFlight = 1;

/// A warp reads a position's row: lane t holds elements [4 t, 4 t + 4) of a head (4 query
/// heads' accumulators then fit the registers the products leave: docs/perf.md, step 25).
constexpr int kElems = kHeadDim / 32;

/// What an attention item needs of the layer and the step.
struct AttnStep {
  const __nv_bfloat16* qkv;  // this layer's q/k/v row
  __nv_bfloat16* k_cache;    // [n_kv_heads, capacity, 128]
  __nv_bfloat16* v_cache;
  const float* inv_freq;  // [64]
  long long capacity;
  int n_heads, n_kv_heads, group;
  int position;  // the token's; the cache holds [0, position) before this step
  float attn_scale, rope_scale;
};

__device__ __forceinline__ void load4(const __nv_bfloat16* p, float (&f)[kElems]) {
  const uint2 v = __ldcg(reinterpret_cast<const uint2*>(p));
  const float2 a = unpack_bf2(v.x), b = unpack_bf2(v.y);
  f[0] = a.x;
  f[1] = a.y;
  f[2] = b.x;
  f[3] = b.y;
}
__device__ __forceinline__ void store4(__nv_bfloat16* p, const float (&f)[kElems]) {
  *reinterpret_cast<uint2*>(p) = make_uint2(pack_bf2(f[0], f[1]), pack_bf2(f[2], f[3]));
}

/// Rotates a head's elements held by lane t (elements 4 t + e) and rounds them to bf16, as
/// rope_kv_append.cu does for Neox pairs (i, i + 64), which sit in lanes t and t ^ 16 (the plan
/// refuses the interleaved layout). All 32 lanes of the warp must call it.
__device__ __forceinline__ void rope4(float (&x)[kElems], const float (&sn)[kElems],
                                      const float (&cs)[kElems], int t) {
  float other[kElems];
#pragma unroll
  for (int e = 0; e < kElems; ++e) other[e] = __shfl_xor_sync(0xffffffffu, x[e], 16);
  const bool low = t < 16;  // this lane holds u = i, its partner w = i + 64
#pragma unroll
  for (int e = 0; e < kElems; ++e) {
    x[e] = round_bf16(low ? x[e] * cs[e] - other[e] * sn[e] : x[e] * cs[e] + other[e] * sn[e]);
  }
}

__device__ __forceinline__ float exp_from(float m, float big) {
  return m == -INFINITY ? 0.0f : expf(m - big);
}

/// The item (KV head h, chunk c of n_chunks) of one layer: partials of its query heads over the
/// chunk's positions into partials[((h group + g) max_chunks + c) (128 + 2)]: max, sum, then the
/// accumulator. The chunk holding `position` first appends the rotated k and v there.
/// acc_smem: 4 x 16 x 128 floats; ml_smem: 2 x 16 x 4 floats.
__device__ __forceinline__ void attention_item(const AttnStep& a, int h, int c, int n_chunks,
                                               int max_chunks, float* partials, float* acc_smem,
                                               float* ml_smem) {
  const int warp = threadIdx.x >> 5, t = threadIdx.x & 31;
  const int kv_len = a.position + 1;
  const int p0 = static_cast<int>(static_cast<long long>(c) * kv_len / n_chunks);
  const int p1 = static_cast<int>(static_cast<long long>(c + 1) * kv_len / n_chunks);
  const int d0 = kElems * t;
  float sn[kElems], cs[kElems];
  const float pf = static_cast<float>(a.position);
#pragma unroll
  for (int e = 0; e < kElems; ++e) {
    const int i = (d0 + e) % (kHeadDim / 2);
    rope_sin_cos(pf, a.inv_freq[i], a.rope_scale, sn[e], cs[e]);
  }
  const int h0 = h * a.group;
  // The chunk holding the new position appends it: warp 0 k (rotated), warp 1 v. Their rows are
  // requested with q's, so the item starts with one round trip to L2.
  const bool appends = c == n_chunks - 1 && warp < 2;
  float fresh[kElems];
  if (appends)
    load4(a.qkv + (a.n_heads + (warp == 0 ? 0 : a.n_kv_heads) + h) * kHeadDim + d0, fresh);
  // q rotated and rounded to bf16 is exact as bf16 pairs: half the registers of floats. The
  // scale is applied to the dot product.
  float qf[kMaxGroup][kElems];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g < a.group) {
      load4(a.qkv + (h0 + g) * kHeadDim + d0, qf[g]);
    } else {
#pragma unroll
      for (int e = 0; e < kElems; ++e) qf[g][e] = 0.0f;
    }
  }
  unsigned int q[kMaxGroup][kElems / 2];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    rope4(qf[g], sn, cs, t);
#pragma unroll
    for (int j = 0; j < kElems / 2; ++j) q[g][j] = pack_bf2(qf[g][2 * j], qf[g][2 * j + 1]);
  }
  if (c == n_chunks - 1) {
    if (appends) {
      if (warp == 0) rope4(fresh, sn, cs, t);
      __nv_bfloat16* cache = warp == 0 ? a.k_cache : a.v_cache;
      store4(cache + (h * a.capacity + a.position) * kHeadDim + d0, fresh);
    }
    compute_sync();  // the appended row is read below by other warps of this block
  }

  float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][kElems];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int e = 0; e < kElems; ++e) acc[g][e] = 0.0f;
  }
  const __nv_bfloat16* kh = a.k_cache + h * a.capacity * kHeadDim + d0;
  const __nv_bfloat16* vh = a.v_cache + h * a.capacity * kHeadDim + d0;
  // The loop bound is uniform over the warp, so every lane reaches every shuffle.
  for (int base = p0; base < p1; base += kComputeWarps * kRowsInFlight) {
    float kf[kRowsInFlight][kElems], vf[kRowsInFlight][kElems];
    bool active[kRowsInFlight];
#pragma unroll
    for (int u = 0; u < kRowsInFlight; ++u) {
      const int s = base + warp + u * kComputeWarps;
      active[u] = s < p1;
      if (active[u]) {
        load4(kh + static_cast<long long>(s) * kHeadDim, kf[u]);
        load4(vh + static_cast<long long>(s) * kHeadDim, vf[u]);
      } else {
#pragma unroll
        for (int e = 0; e < kElems; ++e) kf[u][e] = vf[u][e] = 0.0f;
      }
    }
#pragma unroll
    for (int u = 0; u < kRowsInFlight; ++u) {
      float dot[kMaxGroup];
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        float d = 0.0f;
#pragma unroll
        for (int j = 0; j < kElems / 2; ++j) {
          const float2 qf = unpack_bf2(q[g][j]);
          d = fmaf(qf.x, kf[u][2 * j], d);
          d = fmaf(qf.y, kf[u][2 * j + 1], d);
        }
        dot[g] = warp_sum(d);
      }
      if (!active[u]) continue;
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        const float x = dot[g] * a.attn_scale;
        if (x > m[g]) {
          const float corr = exp_from(m[g], x);
          l[g] = l[g] * corr + 1.0f;
#pragma unroll
          for (int e = 0; e < kElems; ++e) acc[g][e] = fmaf(acc[g][e], corr, vf[u][e]);
          m[g] = x;
        } else {
          const float w = expf(x - m[g]);
          l[g] += w;
#pragma unroll
          for (int e = 0; e < kElems; ++e) acc[g][e] = fmaf(w, vf[u][e], acc[g][e]);
        }
      }
    }
  }
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
#pragma unroll
    for (int e = 0; e < kElems; ++e) {
      acc_smem[(g * kComputeWarps + warp) * kHeadDim + d0 + e] = acc[g][e];
    }
  }
  if (t == 0) {
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      ml_smem[warp * kMaxGroup + g] = m[g];
      ml_smem[kComputeWarps * kMaxGroup + warp * kMaxGroup + g] = l[g];
    }
  }
  compute_sync();
  // Thread (g, d) folds the 16 warps' states of element d of query head g.
  const int g = threadIdx.x / kHeadDim, d = threadIdx.x % kHeadDim;
  if (g < a.group) {
    float big = -INFINITY;
    for (int w = 0; w < kComputeWarps; ++w) big = fmaxf(big, ml_smem[w * kMaxGroup + g]);
    float sum = 0.0f, out = 0.0f;
    for (int w = 0; w < kComputeWarps; ++w) {
      const float f = exp_from(ml_smem[w * kMaxGroup + g], big);
      sum = fmaf(ml_smem[kComputeWarps * kMaxGroup + w * kMaxGroup + g], f, sum);
      out = fmaf(acc_smem[(g * kComputeWarps + w) * kHeadDim + d], f, out);
    }
    float* dst = partials + (static_cast<long long>(h0 + g) * max_chunks + c) * (kHeadDim + 2);
    if (d == 0) {
      dst[0] = big;
      dst[1] = sum;
    }
    dst[2 + d] = out;
  }
}

/// The merge of KV head h's query heads over the n_chunks partials into attn (bf16 [n_heads,
/// 128]), by the block that finished the head's last item.
__device__ __forceinline__ void attention_merge(const AttnStep& a, int h, int n_chunks,
                                                int max_chunks, const float* partials,
                                                __nv_bfloat16* attn) {
  const int g = threadIdx.x / kHeadDim, d = threadIdx.x % kHeadDim;
  if (g >= a.group) return;
  const int hq = h * a.group + g;
  const float* src = partials + static_cast<long long>(hq) * max_chunks * (kHeadDim + 2);
  float big = -INFINITY, sum = 0.0f, out = 0.0f;
  // Every chunk's max, sum and element requested before any is used (one round trip for up to
  // 16 chunks; a launch has at most 132 / n_kv_heads of them on an H100), folded online.
  constexpr int kBatch = 16;
  for (int c0 = 0; c0 < n_chunks; c0 += kBatch) {
    float pm[kBatch], pl[kBatch], pa[kBatch];
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
      const float* part = src + (c0 + i) * (kHeadDim + 2);
      const bool in = c0 + i < n_chunks;
      pm[i] = in ? __ldcg(part) : -INFINITY;
      pl[i] = in ? __ldcg(part + 1) : 0.0f;
      pa[i] = in ? __ldcg(part + 2 + d) : 0.0f;
    }
    float next = big;
#pragma unroll
    for (int i = 0; i < kBatch; ++i) next = fmaxf(next, pm[i]);
    const float keep = exp_from(big, next);
    sum *= keep;
    out *= keep;
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
      const float f = exp_from(pm[i], next);
      sum = fmaf(pl[i], f, sum);
      out = fmaf(pa[i], f, out);
    }
    big = next;
  }
  attn[hq * kHeadDim + d] = __float2bfloat16_rn(out / sum);
}

}  // namespace mlxn::cuda::fd
