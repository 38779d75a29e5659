// The CPU reference's activation functions, in double: shared by the activation kernels and the
// gated mat-vec (matmul with gate_act), so a fused gated projection gives exactly what the
// matmul + silu_mul/gelu_mul sequence gives.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

#include "ops/matmul_params.h"

namespace mlxn::cpu {

inline double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

inline double gelu_tanh(double x) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}

inline double gelu_erf(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2));
}

/// act(g) for an ops::GateAct (kGateNone: g).
inline double gate_activation(std::int32_t act, double g) {
  switch (act) {
    case ops::kGateSilu:
      return g * sigmoid(g);
    case ops::kGateGeluTanh:
      return gelu_tanh(g);
    case ops::kGateGeluErf:
      return gelu_erf(g);
    default:
      return g;
  }
}

}  // namespace mlxn::cpu
