// Parameter structs of the activation ops, shared by the CPU and CUDA kernels (plain data).
#pragma once

#include <cstdint>

namespace mlxn::ops {

/// Unary activations, out[i] = f(x[i]) for i < n. Bindings: x, out. Spec: dtype.
///   scalar_mul: x * s;  silu;  gelu_tanh;  gelu_erf;  softcap: s * tanh(x / s).
/// Gated activations, out[i] = f(gate[i]) * up[i]. Bindings: gate, up, out. Spec: dtype.
///   silu_mul (SwiGLU), gelu_tanh_mul / gelu_erf_mul (GeGLU), sigmoid_mul.
/// Computed in f32 and rounded once to the dtype; out may alias any input.
struct ActivationParams {
  std::int64_t n;
  float s;  // scalar_mul: the factor; softcap: the cap c; unused otherwise
};

}  // namespace mlxn::ops
