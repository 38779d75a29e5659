// Registration of the CPU kernels of norms.h (Gemma RMSNorm, LayerNorm, L2, add+RMSNorm, qk-norm).
#pragma once

#include "mlxn/core/kernel_registry.h"

namespace mlxn::cpu {

/// Adds the factories of the norm kernels to `registry`.
void register_norms_kernels(KernelRegistry& registry);

}  // namespace mlxn::cpu
