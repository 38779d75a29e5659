// Device helpers shared by the attention kernels: run-time-dtype loads/stores of q/out, 16-byte
// K/V loads widened to f32, masking by position, and warp reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backends/cuda/kernels/common.cuh"
#include "mlxn/core/dtype.h"
#include "ops/attention_params.h"

namespace mlxn::cuda {

inline constexpr int kDTypeF16 = static_cast<int>(DType::F16);
inline constexpr int kDTypeBF16 = static_cast<int>(DType::BF16);

/// Element i of a float tensor whose dtype (f32/f16/bf16) is known only at run time.
__device__ __forceinline__ float load_any(const void* base, long long i, int dtype) {
  if (dtype == kDTypeF16) return __half2float(static_cast<const __half*>(base)[i]);
  if (dtype == kDTypeBF16) return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[i]);
  return static_cast<const float*>(base)[i];
}

__device__ __forceinline__ void store_any(void* base, long long i, int dtype, float v) {
  if (dtype == kDTypeF16) {
    static_cast<__half*>(base)[i] = __float2half_rn(v);
  } else if (dtype == kDTypeBF16) {
    static_cast<__nv_bfloat16*>(base)[i] = __float2bfloat16_rn(v);
  } else {
    static_cast<float*>(base)[i] = v;
  }
}

/// f[0..E) = p[0..E) as f32, E * sizeof(T) = 16 bytes: one 16-byte load when `vec` (p is then
/// 16-byte aligned), else E scalar loads.
template <class T, int E>
__device__ __forceinline__ void load_f32(const T* p, bool vec, float* f) {
  static_assert(E * sizeof(T) == 16, "one 16-byte word");
  if (vec) {
    const Pack<T, E> pk = load_pack<T, E>(p);
#pragma unroll
    for (int j = 0; j < E; ++j) f[j] = to_f32(pk.v[j]);
  } else {
#pragma unroll
    for (int j = 0; j < E; ++j) f[j] = to_f32(p[j]);
  }
}

/// Whether a key at position kp is visible to a query at qp (see ops::AttentionParams).
__device__ __forceinline__ bool attn_visible(const ops::AttentionParams& p, long long qp,
                                             long long kp) {
  return (!p.causal || kp <= qp) && (p.window <= 0 || kp > qp - p.window);
}

/// Logit after the optional softcap.
__device__ __forceinline__ float attn_softcap(const ops::AttentionParams& p, float x) {
  return p.softcap > 0.0f ? p.softcap * tanhf(x / p.softcap) : x;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

/// exp(a - b) where a = -inf means "no mass" (0), even when b is -inf too (plain expf gives NaN).
__device__ __forceinline__ float exp_diff(float a, float b) {
  return a == -INFINITY ? 0.0f : expf(a - b);
}

}  // namespace mlxn::cuda
