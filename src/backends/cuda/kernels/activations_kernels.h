// Host-side entry points of the CUDA activation kernels (plain C++, no device code).
#pragma once

#include "backends/cuda/kernel_abi.h"
#include "mlxn/core/dtype.h"

namespace mlxn {
class KernelRegistry;
}

namespace mlxn::cuda {

enum class ActivationOp {
  ScalarMul,
  Silu,
  GeluTanh,
  GeluErf,
  Softcap,
  SiluMul,
  GeluTanhMul,
  GeluErfMul,
  SigmoidMul,
};

/// The kernel of `op` for f32/f16/bf16 (ops::ActivationParams), nullptr for other dtypes.
/// Unary ops bind x, out; gated ops (the *Mul ones after Softcap) bind gate, up, out.
ConfigureFn activation_configure(ActivationOp op, DType dtype);

/// Adds the activation kernels' factories to `registry` (defined in pointwise_kernels.cpp).
void register_activations_kernels(KernelRegistry& registry);

}  // namespace mlxn::cuda
