// Host-side entry point of the CUDA kernel of ops::fused_decode_scales (plain C++, no device
// code).
#pragma once

#include "backends/cuda/kernel_abi.h"

namespace mlxn::cuda {

/// fused_decode_scales (ops::FusedDecodeScalesParams; bindings scales, biases, out, all bf16).
/// Registered by register_matmul_kernels (matmul_registry.cpp), next to the DecodeTiles repack.
ConfigureFn fused_decode_scales_configure();

}  // namespace mlxn::cuda
