// Host-side entry point of the CUDA fused decode step (plain C++, no device code).
#pragma once

#include "backends/cuda/kernel_abi.h"

namespace mlxn::cuda {

/// fused_decode_step (ops::FusedDecodeParams; bindings table, x, logits, workspace, inv_freq):
/// one block an SM (at most ops::kFusedDecodeMaxBlocks), the ring as deep as shared memory allows.
/// input_planes: the products' int8 input planes (ops::FusedDecodeInputs: 1 or 2). nullptr for
/// another count, or on the current device when it is older than sm_90 (no bulk copies or
/// mbarriers). Registered by register_cuda_kernels (cuda_kernels.cpp), specialized by "planes".
ConfigureFn fused_decode_configure(int input_planes);

}  // namespace mlxn::cuda
