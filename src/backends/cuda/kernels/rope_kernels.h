// Host-side entry point of the CUDA RoPE kernel (plain C++, no device code).
#pragma once

#include "backends/cuda/kernel_abi.h"
#include "mlxn/core/dtype.h"

namespace mlxn {
class KernelRegistry;
}

namespace mlxn::cuda {

/// The rope kernel for f32/f16/bf16 (ops::RopeParams; x, positions, inv_freq, out).
ConfigureFn rope_configure(DType dtype);

/// Adds the rope kernel's factory to `registry` (defined in pointwise_kernels.cpp).
void register_rope_kernels(KernelRegistry& registry);

}  // namespace mlxn::cuda
