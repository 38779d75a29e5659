// The compute warps' two jobs in the decode-stream probe: staging a product's input in shared
// memory once a product, and multiplying one 128-code step of a unit on the tensor cores.
#pragma once

#include <cuda_bf16.h>

#include "backends/cuda/kernels/fused_decode_products.cuh"
#include "layout.cuh"
#include "ptx.cuh"

namespace probe {

__device__ __forceinline__ void compute_sync() {
  asm volatile("bar.sync 1, %0;" ::"n"(32 * kComputeWarps) : "memory");  // not the streaming warp
}

// The unit's layout is the fused decode step's; its arithmetic is step 24's bf16 mma, which the
// step replaced with an int8 one (docs/perf.md, step 26): this probe keeps measuring the bf16
// arithmetic, so its unit step lives here.
using mlxn::cuda::code_pair;
using mlxn::cuda::word_of;
using mlxn::cuda::fd::kStepCodes;
using mlxn::cuda::fd::pack_bf2;
using mlxn::cuda::fd::silu;
using mlxn::cuda::fd::unpack_bf2;

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

/// Cycles of one staging (read by thread 0 of a timed launch): until the inputs arrived and were
/// transformed, the norm's reduction, and the stores with the group sums.
struct StageClock {
  long long loads = 0, norm = 0, stores = 0;
};

/// Stages the product's input in shared memory (bf16, transformed by its kind, in the B fragment
/// order) and the group sums of what was staged. Every thread requests all of its 16-byte pieces
/// before using any, so staging costs one L2 round trip; the pieces stay in registers as words
/// (cast to bf16 pairs through a pointer, they went to local memory, which the 216 KB of shared
/// memory leaves little L1 to hold). expect_tag != 0: the input is LL words (a bf16 pair with the
/// producing product's tag above it) and is read until every word carries expect_tag, which is
/// then the only wait. late_norm: an RMS-normalized input is staged as it is, each warp's sum of
/// squares is left in red[], and the caller scales the product by the RMS factor afterwards (the
/// product is linear), which takes the reduction's block barrier out of staging.
template <bool kTimed>
__device__ __forceinline__ StageClock stage_input(const Op& op, __nv_bfloat16* xs, float* red,
                                                  float* gsum, bool late_norm,
                                                  unsigned int expect_tag) {
  StageClock clock;
  const long long c0 = kTimed ? clock64() : 0;
  constexpr int kNt = 32 * kComputeWarps;
  constexpr int kPer = (kMaxK / 8 + kNt - 1) / kNt;  // 16-byte pieces a thread at most
  const int t = threadIdx.x, pieces = op.k / 8;
  const bool silu_mul = op.in_kind == kSiluMul;
  uint4 a[kPer], b[kPer];
  if (expect_tag == 0) {
    const auto* in = reinterpret_cast<const uint4*>(op.in);
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int i = t + j * kNt;
      a[j] = b[j] = make_uint4(0, 0, 0, 0);
      if (i < pieces) {
        a[j] = __ldcg(in + i);
        if (silu_mul) b[j] = __ldcg(in + pieces + i);  // up follows gate
      }
    }
  } else {
    const auto* words = reinterpret_cast<const unsigned long long*>(op.in);
    auto low = [](unsigned long long w) { return static_cast<unsigned int>(w); };
    bool ready = false;
    while (!ready) {
      ready = true;
#pragma unroll
      for (int j = 0; j < kPer; ++j) {
        const int i = t + j * kNt;
        a[j] = b[j] = make_uint4(0, 0, 0, 0);
        if (i < pieces) {
          unsigned long long w[8] = {};
          const unsigned long long* p = words + 4LL * i;
          load_words64(p, w[0], w[1]);
          load_words64(p + 2, w[2], w[3]);
          if (silu_mul) {
            load_words64(p + 4LL * pieces, w[4], w[5]);
            load_words64(p + 4LL * pieces + 2, w[6], w[7]);
          }
#pragma unroll
          for (int e = 0; e < 8; ++e) {
            if ((e < 4 || silu_mul) && static_cast<unsigned int>(w[e] >> 32) != expect_tag) {
              ready = false;
            }
          }
          a[j] = make_uint4(low(w[0]), low(w[1]), low(w[2]), low(w[3]));
          b[j] = make_uint4(low(w[4]), low(w[5]), low(w[6]), low(w[7]));
        }
      }
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
      if (silu_mul) {
        const float2 up = unpack_bf2(u[e]);
        w[e] = pack_bf2(silu(f.x) * up.x, silu(f.y) * up.y);
      } else {
        ss = fmaf(f.x, f.x, fmaf(f.y, f.y, ss));  // pieces past the end are zeros
      }
    }
    a[j] = make_uint4(w[0], w[1], w[2], w[3]);
  }
  const long long c1 = kTimed ? clock64() : 0;
  float inv = 1.0f;
  if (op.in_kind == kRmsNorm) {
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((t & 31) == 0) red[t >> 5] = ss;
    if (!late_norm) {
      compute_sync();
      float total = 0.0f;
      for (int w = 0; w < kComputeWarps; ++w) total += red[w];
      inv = rsqrtf(total / op.k + 1e-5f);
    }
  }
  const long long c2 = kTimed ? clock64() : 0;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = t + j * kNt;
    uint4 v = a[j];
    if (op.in_kind == kRmsNorm && !late_norm) {
      unsigned int w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = unpack_bf2(w[e]);
        w[e] = pack_bf2(f.x * inv, f.y * inv);
      }
      v = make_uint4(w[0], w[1], w[2], w[3]);
    }
    // Group sums of the staged (rounded) x: a group is 8 pieces, held by 8 consecutive lanes.
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
  if (kTimed) {
    clock.loads = c1 - c0;
    clock.norm = c2 - c1;
    clock.stores = clock64() - c2;
  }
  return clock;
}

}  // namespace probe
