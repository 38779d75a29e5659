// Registration of the CPU RoPE kernel.
#pragma once

#include "mlxn/core/kernel_registry.h"

namespace mlxn::cpu {

/// Adds the factory of the rope kernel (spec: dtype) to `registry`.
void register_rope_kernels(KernelRegistry& registry);

}  // namespace mlxn::cpu
