// Registration of the CPU activation kernels (scalar_mul, silu, gelu, softcap, gated forms).
#pragma once

#include "mlxn/core/kernel_registry.h"

namespace mlxn::cpu {

/// Adds the factories of the activation kernels (spec: dtype) to `registry`.
void register_activations_kernels(KernelRegistry& registry);

}  // namespace mlxn::cpu
