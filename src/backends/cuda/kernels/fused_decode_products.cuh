// The fused decode step's mat-vec work: staging a product's input in shared memory (once a
// product, each block the whole input) and multiplying one 128-code step of a unit on the tensor
// cores. The design and its measurements: docs/perf.md, issue 7, step 24
// (tools/decode_stream_probe is the same arithmetic on a synthetic chain).
#pragma once

#include <cuda_bf16.h>

#include "backends/cuda/kernels/fused_decode_layout.cuh"
#include "backends/cuda/kernels/hopper_ptx.cuh"
#include "backends/cuda/kernels/mlx4_codes.cuh"

namespace mlxn::cuda::fd {

/// acc_a / acc_b (rows g, g + 8 of the tile) += step `s` of the unit against x, the unit's
/// 2,048 input elements, each 8 stored in the order 0 4 1 5 2 6 3 7 (the mma's B fragment order:
/// a lane's 16-byte load is its B registers for both halves of a word, with no permutes). gsum:
/// the sums of x over the unit's 32 scale groups. Lane (g, t4) holds codes [32 t4, 32 t4 + 32) of
/// its two rows; B's column j carries x only where its k lies in the step's group j, so C's
/// columns 0 and 1 are the step's two groups and lanes with t4 == 0 own them (only their
/// accumulators are ever non-zero). Over a group, x (s q + b) sums to s (C - 128 X) + b X.
__device__ __forceinline__ void unit_step(const unsigned char* unit, const __nv_bfloat16* x,
                                          const float* gsum, int s, int lane, float& acc_a,
                                          float& acc_b) {
  const int g = lane >> 2, t4 = lane & 3;
  const uint4 qa = *reinterpret_cast<const uint4*>(unit + s * 1024 + 16 * lane);
  const uint4 qb = *reinterpret_cast<const uint4*>(unit + s * 1024 + 512 + 16 * lane);
  const bool xcol = g == (32 * t4) / kGroup;
  const __nv_bfloat16* xt = x + s * kStepCodes + 32 * t4;
  float c[2][4] = {};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const unsigned int wa = word_of(qa, i), wb = word_of(qb, i);
    const uint4 xw = xcol ? *reinterpret_cast<const uint4*>(xt + 8 * i) : make_uint4(0, 0, 0, 0);
    mma_bf16_16816(c[0], code_pair(wa, 0), code_pair(wb, 0), code_pair(wa, 4), code_pair(wb, 4),
                   xw.x, xw.y);
    mma_bf16_16816(c[1], code_pair(wa, 8), code_pair(wb, 8), code_pair(wa, 12), code_pair(wb, 12),
                   xw.z, xw.w);
  }
  if (t4 == 0) {
    const unsigned char* cols = unit + kCodeBytes + s * 128;
    const uint2 ra = *reinterpret_cast<const uint2*>(cols + 8 * g);
    const uint2 rb = *reinterpret_cast<const uint2*>(cols + 64 + 8 * g);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const float xsum = gsum[2 * s + j];
      const float sa = __uint_as_float(j ? ra.x & 0xFFFF0000u : ra.x << 16);
      const float ba = __uint_as_float(j ? ra.y & 0xFFFF0000u : ra.y << 16);
      const float sb = __uint_as_float(j ? rb.x & 0xFFFF0000u : rb.x << 16);
      const float bb = __uint_as_float(j ? rb.y & 0xFFFF0000u : rb.y << 16);
      acc_a = fmaf(sa, fmaf(-128.0f, xsum, c[0][j] + c[1][j]), fmaf(ba, xsum, acc_a));
      acc_b = fmaf(sb, fmaf(-128.0f, xsum, c[0][2 + j] + c[1][2 + j]), fmaf(bb, xsum, acc_b));
    }
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
/// silu(g) as ops::silu_mul computes it: g (1 / (1 + e^-g)) with the accurate expf.
__device__ __forceinline__ float silu(float g) {
  return g * (1.0f / (1.0f + expf(-g)));
}

/// How a product's input is made from what the previous steps wrote.
enum InputKind : int {
  kInPlain = 0,    // the row as it is (the attention output)
  kInRmsNorm = 1,  // rms_norm(x, weight): x (1 / sqrt(mean(x^2) + eps)) weight, rounded to bf16
  kInSiluMul = 2,  // silu(gate) * up, rounded to bf16: gate is in[0, k), up in[k, 2k)
};

/// Stages the product's input (k elements; transformed by `kind`) in shared memory in the B
/// fragment order, and the sums of the staged (rounded) values over each group of 64. Every
/// thread requests all of its 16-byte pieces before using any, so staging costs one L2 round
/// trip; the pieces stay in registers as words (cast to bf16 pairs through a pointer they went to
/// local memory: docs/perf.md, step 24). Inputs written earlier in this launch by other blocks
/// are read through L2 (__ldcg), never a possibly stale L1 line.
__device__ __forceinline__ void stage_input(const __nv_bfloat16* in, const __nv_bfloat16* weight,
                                            int k, int kind, float eps, __nv_bfloat16* xs,
                                            float* red, float* gsum) {
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
      if (kind == kInSiluMul) b[j] = __ldcg(src + pieces + i);
      if (kind == kInRmsNorm) b[j] = __ldg(reinterpret_cast<const uint4*>(weight) + i);
    }
  }
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    unsigned int w[4] = {a[j].x, a[j].y, a[j].z, a[j].w};
    const unsigned int u[4] = {b[j].x, b[j].y, b[j].z, b[j].w};
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 f = unpack_bf2(w[e]);
      if (kind == kInSiluMul) {
        const float2 up = unpack_bf2(u[e]);
        w[e] = pack_bf2(silu(f.x) * up.x, silu(f.y) * up.y);
      } else {
        ss = fmaf(f.x, f.x, fmaf(f.y, f.y, ss));  // pieces past the end are zeros
      }
    }
    a[j] = make_uint4(w[0], w[1], w[2], w[3]);
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
    const int i = t + j * kComputeThreads;
    uint4 v = a[j];
    if (kind == kInRmsNorm) {
      unsigned int w[4] = {v.x, v.y, v.z, v.w};
      const unsigned int g[4] = {b[j].x, b[j].y, b[j].z, b[j].w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = unpack_bf2(w[e]);
        const float2 s = unpack_bf2(g[e]);
        w[e] = pack_bf2(f.x * inv * s.x, f.y * inv * s.y);
      }
      v = make_uint4(w[0], w[1], w[2], w[3]);
    }
    // Group sums of the staged x: a group is 8 pieces, held by 8 consecutive lanes.
    float sum = 0.0f;
    {
      const unsigned int w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = unpack_bf2(w[e]);
        sum += f.x + f.y;
      }
    }
    for (int o = 1; o < 8; o <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if (i < pieces) {
      reinterpret_cast<uint4*>(xs)[i] =
          make_uint4(__byte_perm(v.x, v.z, 0x5410u), __byte_perm(v.x, v.z, 0x7632u),
                     __byte_perm(v.y, v.w, 0x5410u), __byte_perm(v.y, v.w, 0x7632u));
      if ((i & 7) == 0) gsum[i >> 3] = sum;
    }
  }
}

}  // namespace mlxn::cuda::fd
