// The CUDA activation functions in f32: shared by the activation kernels and the gated mat-vecs
// (gate_act), so a fused gated projection gives exactly what the mat-vec + silu_mul/gelu_mul
// sequence gives. Accurate libdevice functions, no fast-math intrinsics: the f32 results must
// stay within 1e-5 of a float64 reference.
#pragma once

#include "ops/matmul_params.h"

namespace mlxn::cuda {

__device__ __forceinline__ float sigmoid(float x) {
  return 1.0f / (1.0f + expf(-x));  // expf overflows to inf for x < -88: the result is then 0
}

struct Silu {
  __device__ __forceinline__ static float apply(float x, float) { return x * sigmoid(x); }
};
struct GeluTanh {
  __device__ __forceinline__ static float apply(float x, float) {
    constexpr float kSqrt2OverPi = 0.7978845608028654f;
    // 0.5 * (1 + tanh(z)) = 1 / (1 + exp(-2z)): no cancellation for negative x, where 1 + tanh(z)
    // would lose most of its digits.
    const float z = kSqrt2OverPi * (x + 0.044715f * x * x * x);
    return x / (1.0f + expf(-2.0f * z));
  }
};
struct GeluErf {
  __device__ __forceinline__ static float apply(float x, float) {
    // 1 + erf(t) = erfc(-t), exact where 1 + erf(t) would cancel (negative x).
    return 0.5f * x * erfcf(x * -0.7071067811865476f);
  }
};

/// act(g) * u for an ops::GateAct, as the gated activation kernels compute it.
__device__ __forceinline__ float gated_value(int act, float g, float u) {
  switch (act) {
    case ops::kGateSilu:
      return Silu::apply(g, 0.0f) * u;
    case ops::kGateGeluTanh:
      return GeluTanh::apply(g, 0.0f) * u;
    case ops::kGateGeluErf:
      return GeluErf::apply(g, 0.0f) * u;
    default:
      return g;
  }
}

}  // namespace mlxn::cuda
