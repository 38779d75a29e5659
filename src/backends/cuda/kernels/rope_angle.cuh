// The sine and cosine RoPE rotates a pair by, shared by rope.cu and rope_kv_append.cu so that the
// fused kernel stays bit-identical to rope followed by kv_cache_append.
#pragma once

namespace mlxn::cuda {

/// sin and cos of pos * f, each times `scale`. The angle pos * f carries a rounding error of up
/// to pos * f * 2^-24 (5e-4 rad at position 8192); fmaf recovers it exactly and a second-order
/// Taylor step removes it from sin/cos.
__device__ __forceinline__ void rope_sin_cos(float pos, float f, float scale, float& sn,
                                             float& cs) {
  const float a = __fmul_rn(pos, f);
  const float a_lo = fmaf(pos, f, -a);
  float s, c;
  sincosf(a, &s, &c);
  const float half_lo2 = 0.5f * a_lo * a_lo;
  sn = (fmaf(a_lo, c, s) - half_lo2 * s) * scale;
  cs = (fmaf(-a_lo, s, c) - half_lo2 * c) * scale;
}

}  // namespace mlxn::cuda
