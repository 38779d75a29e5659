// Registration of the CPU embedding kernels (dense and MLX-quantized).
#pragma once

#include "mlxn/core/kernel_registry.h"

namespace mlxn::cpu {

/// Adds the factories of embedding (spec: dtype) and embedding_quantized (spec: dtype,
/// scale_dtype) to `registry`.
void register_embedding_kernels(KernelRegistry& registry);

}  // namespace mlxn::cpu
