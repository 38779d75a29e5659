// The fused decode step's mat-vec work: staging a product's input in shared memory (once a
// product, each block the whole input, quantized to int8) and multiplying one 128-code step of a
// unit on the tensor cores (int8 mma). The design and its measurements: docs/perf.md, issue 7,
// steps 24 and 26 (tools/decode_stream_probe measures step 24's bf16 arithmetic on a synthetic
// chain).
#pragma once

#include <cuda_bf16.h>

#include "backends/cuda/kernels/fused_decode_layout.cuh"
#include "backends/cuda/kernels/hopper_ptx.cuh"
#include "backends/cuda/kernels/mlx4_codes.cuh"

namespace mlxn::cuda::fd {

/// acc (rows g, g + 8 of the tile) += step `s` of the unit against the input quantized to int8
/// (stage_input): xq holds the unit's 2,048 codes' inputs, each 8 as the bytes 0 2 4 6 1 3 5 7,
/// xscale the scale of each run of 32 (x ~ xscale xq), gsum the sums of x over the unit's 32
/// scale groups. With kPlanes == 2, xq2 holds the first plane's rounding error in units of
/// xscale / 254 (x ~ xscale (xq + xq2 / 254)).
/// Lane (g, t4) holds codes [32 t4, 32 t4 + 32) of its two rows, 4 words: word i's low nibbles
/// (codes 0 2 4 6) and high nibbles (1 3 5 7) are, as int8 0..15, the A slots of mma i that the
/// input's bytes face in B. B's column j carries run j's input (lanes with g == t4) and zeros
/// elsewhere, so C's column j is run j's exact integer dot; lane t4 < 2 owns runs 2 t4 and
/// 2 t4 + 1, the step's scale group t4. Over a group, x (s q + b) sums to
/// s (sx_0 C_0 + sx_1 C_1) + b X. Sums land in lanes t4 = 0 and 1 (the caller adds the pair).
/// Against the bf16 mma (step 24), a word takes 3 instructions instead of 7 and a plane 4 mmas a
/// step instead of 8 (docs/perf.md, step 26).
template <int kPlanes>
__device__ __forceinline__ void unit_step(const unsigned char* unit, const signed char* xq,
                                          const signed char* xq2, const float* xscale,
                                          const float* gsum, int s, int lane, float& acc_a,
                                          float& acc_b) {
  static_assert(kPlanes == 1 || kPlanes == 2, "one or two int8 planes");
  const int g = lane >> 2, t4 = lane & 3;
  const uint4 qa = *reinterpret_cast<const uint4*>(unit + s * 1024 + 16 * lane);
  const uint4 qb = *reinterpret_cast<const uint4*>(unit + s * 1024 + 512 + 16 * lane);
  const bool xcol = g == t4;
  const int off = s * kStepCodes + 32 * t4;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  uint4 x[kPlanes][2];
#pragma unroll
  for (int p = 0; p < kPlanes; ++p) {
    const signed char* xt = (p == 0 ? xq : xq2) + off;
    x[p][0] = xcol ? *reinterpret_cast<const uint4*>(xt) : zero;
    x[p][1] = xcol ? *reinterpret_cast<const uint4*>(xt + 16) : zero;
  }
  // Two accumulator chains, so that a step's mmas need not all wait for each other: one plane
  // each, or (one plane) words 0 2 and 1 3.
  int c[2][4] = {};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const unsigned int wa = word_of(qa, i), wb = word_of(qb, i);
    const unsigned int a0 = wa & 0x0F0F0F0Fu, a1 = wb & 0x0F0F0F0Fu;
    const unsigned int a2 = (wa >> 4) & 0x0F0F0F0Fu, a3 = (wb >> 4) & 0x0F0F0F0Fu;
#pragma unroll
    for (int p = 0; p < kPlanes; ++p) {
      const uint4& xw = x[p][i >> 1];
      mma_s8_16832(c[kPlanes == 2 ? p : (i & 1)], a0, a1, a2, a3, (i & 1) ? xw.z : xw.x,
                   (i & 1) ? xw.w : xw.y);
    }
  }
  if (t4 < 2) {
    // Each run's integer dot, exact in float: |C| <= 15 x 127 x 32 a plane, and 254 C_1 + C_2
    // stays below 2^24.
    int d[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) d[j] = kPlanes == 2 ? c[0][j] * 254 + c[1][j] : c[0][j] + c[1][j];
    const unsigned char* cols = unit + kCodeBytes + s * 128;
    const uint2 ra = *reinterpret_cast<const uint2*>(cols + 8 * g);
    const uint2 rb = *reinterpret_cast<const uint2*>(cols + 64 + 8 * g);
    const float2 sx = *reinterpret_cast<const float2*>(xscale + 4 * s + 2 * t4);
    const float xsum = gsum[2 * s + t4];
    // Group t4's scale and bias of each row: the high bf16 of the word for group 1.
    const float sa = __uint_as_float(t4 ? ra.x & 0xFFFF0000u : ra.x << 16);
    const float ba = __uint_as_float(t4 ? ra.y & 0xFFFF0000u : ra.y << 16);
    const float sb = __uint_as_float(t4 ? rb.x & 0xFFFF0000u : rb.x << 16);
    const float bb = __uint_as_float(t4 ? rb.y & 0xFFFF0000u : rb.y << 16);
    const float unit_scale = kPlanes == 2 ? 1.0f / 254.0f : 1.0f;
    const float sx0 = sx.x * unit_scale, sx1 = sx.y * unit_scale;
    const float da = fmaf(sx0, static_cast<float>(d[0]), sx1 * static_cast<float>(d[1]));
    const float db = fmaf(sx0, static_cast<float>(d[2]), sx1 * static_cast<float>(d[3]));
    acc_a = fmaf(sa, da, fmaf(ba, xsum, acc_a));
    acc_b = fmaf(sb, db, fmaf(bb, xsum, acc_b));
  }
}

/// Two bf16 of a word as floats (exact), and two floats rounded into a word.
__device__ __forceinline__ float2 unpack_bf2(unsigned int w) {
  return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xFFFF0000u));
}
__device__ __forceinline__ unsigned int pack_bf2(float lo, float hi) {
  return static_cast<unsigned int>(__bfloat16_as_ushort(__float2bfloat16_rn(lo))) |
         (static_cast<unsigned int>(__bfloat16_as_ushort(__float2bfloat16_rn(hi))) << 16);
}
/// bf16 rounding of a float, as a float.
__device__ __forceinline__ float round_bf16(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}
/// silu(g) as ops::silu_mul computes it: g (1 / (1 + e^-g)) with the accurate expf (the gate/up
/// product's epilogue, once an element: the staging of every block no longer computes it).
__device__ __forceinline__ float silu(float g) {
  return g * (1.0f / (1.0f + expf(-g)));
}

/// How a product's input is made from what the previous steps wrote.
enum InputKind : int {
  kInPlain = 0,    // the row as it is (the attention output, silu(g) u)
  kInRmsNorm = 1,  // rms_norm(x, weight): x (1 / sqrt(mean(x^2) + eps)) weight, rounded to bf16
};

/// Four floats rounded to int8 in one word, the first in the low byte.
__device__ __forceinline__ unsigned int pack_s8(float a, float b, float c, float d) {
  return (static_cast<unsigned int>(__float2int_rn(a)) & 0xFFu) |
         ((static_cast<unsigned int>(__float2int_rn(b)) & 0xFFu) << 8) |
         ((static_cast<unsigned int>(__float2int_rn(c)) & 0xFFu) << 16) |
         (static_cast<unsigned int>(__float2int_rn(d)) << 24);
}

/// Where a product's staged input lives in shared memory (the `xs` carve-up: two planes of kMaxK
/// int8 values, then the runs' scales).
struct StagedInput {
  signed char* xq;   // [k]: each 8 elements as the bytes 0 2 4 6 1 3 5 7
  signed char* xq2;  // [k]: the second plane (two-plane inputs), in the same order
  float* xscale;     // [k / 32]: x ~ xscale[run] (xq + xq2 / 254)
  float* gsum;       // [k / 64]: the sums of the staged (bf16-rounded) x over each scale group
};

/// Stages the product's input (k elements; transformed by `kind` and rounded to bf16 as the
/// per-op path rounds it) in shared memory quantized to int8 for unit_step: each run of 32
/// elements scaled by its largest magnitude / 127 (as llama.cpp's q8 activations, at 32 a block)
/// and, with kPlanes == 2, the rounding error of that quantized again in steps of 1/254 of the
/// scale; with the (float) sums of the bf16 values over each group of 64. Every thread requests all
/// of its 16-byte pieces before using any, so staging costs one L2 round trip; the pieces stay in
/// registers as words (cast to bf16 pairs through a pointer they went to local memory:
/// docs/perf.md, step 24). Inputs written earlier in this launch by other blocks are read
/// through L2 (__ldcg), never a possibly stale L1 line. A thread takes pieces t, t + 512, ...:
/// the passes past the last piece are skipped, by a test of the pass and k alone, so the whole
/// block skips a pass together (in a pass that runs, threads past the end take part in the
/// shuffles with zeros); computing them on zeros was three quarters of the staging of a
/// 4,096-element input (docs/perf.md, step 27).
template <int kPlanes>
__device__ __forceinline__ void stage_input(const __nv_bfloat16* in, const __nv_bfloat16* weight,
                                            int k, int kind, float eps, const StagedInput& st,
                                            float* red) {
  constexpr int kPer = (kMaxK / 8 + kComputeThreads - 1) / kComputeThreads;  // pieces a thread
  const int t = threadIdx.x, pieces = k / 8;
  const auto* src = reinterpret_cast<const uint4*>(in);
  uint4 a[kPer], b[kPer];
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = t + j * kComputeThreads;
    a[j] = b[j] = make_uint4(0, 0, 0, 0);
    if (i < pieces) {
      a[j] = __ldcg(src + i);
      if (kind == kInRmsNorm) b[j] = __ldg(reinterpret_cast<const uint4*>(weight) + i);
    }
  }
  float ss = 0.0f;
  if (kind == kInRmsNorm) {
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      if (j * kComputeThreads >= pieces) break;
      const unsigned int w[4] = {a[j].x, a[j].y, a[j].z, a[j].w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = unpack_bf2(w[e]);
        ss = fmaf(f.x, f.x, fmaf(f.y, f.y, ss));  // pieces past the end are zeros
      }
    }
  }
  float inv = 1.0f;
  if (kind == kInRmsNorm) {
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((t & 31) == 0) red[t >> 5] = ss;
    compute_sync();
    float total = 0.0f;
    for (int w = 0; w < kComputeWarps; ++w) total += red[w];
    // 1 / sqrt rather than rsqrtf, as ops::rms_norm computes it.
    inv = 1.0f / sqrtf(total / static_cast<float>(k) + eps);
  }
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    if (j * kComputeThreads >= pieces) break;
    const int i = t + j * kComputeThreads;
    unsigned int w[4] = {a[j].x, a[j].y, a[j].z, a[j].w};
    if (kind == kInRmsNorm) {
      const unsigned int g[4] = {b[j].x, b[j].y, b[j].z, b[j].w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = unpack_bf2(w[e]);
        const float2 s = unpack_bf2(g[e]);
        w[e] = pack_bf2(f.x * inv * s.x, f.y * inv * s.y);
      }
    }
    // The piece's 8 values; its group's sum (8 pieces, 8 consecutive lanes) and its run's
    // largest magnitude (4 pieces).
    float f[8];
    float sum = 0.0f, amax = 0.0f;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 v = unpack_bf2(w[e]);
      f[2 * e] = v.x;
      f[2 * e + 1] = v.y;
      sum += v.x + v.y;
      amax = fmaxf(amax, fmaxf(fabsf(v.x), fabsf(v.y)));
    }
    for (int o = 1; o < 4; o <<= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    for (int o = 1; o < 8; o <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    // 127 / amax overflows below ~3.7e-37: such a run counts as zeros (its sum stays in gsum).
    const float q = amax > 1e-35f ? 127.0f / amax : 0.0f;
    const float sx = amax * (1.0f / 127.0f);
    if (i < pieces) {
      float v[8], r[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        v[e] = rintf(f[e] * q);
        // The first plane's error in steps of sx / 254: |f q - v| <= 1/2, so within +-127.
        r[e] = fminf(fmaxf(rintf((f[e] - v[e] * sx) * q * 254.0f), -127.0f), 127.0f);
      }
      reinterpret_cast<uint2*>(st.xq)[i] =
          make_uint2(pack_s8(v[0], v[2], v[4], v[6]), pack_s8(v[1], v[3], v[5], v[7]));
      if (kPlanes == 2) {
        reinterpret_cast<uint2*>(st.xq2)[i] =
            make_uint2(pack_s8(r[0], r[2], r[4], r[6]), pack_s8(r[1], r[3], r[5], r[7]));
      }
      if ((i & 3) == 0) st.xscale[i >> 2] = sx;
      if ((i & 7) == 0) st.gsum[i >> 3] = sum;
    }
  }
}

}  // namespace mlxn::cuda::fd
