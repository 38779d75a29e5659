// Host-side entry points of the CUDA kernels of norms.h (plain C++, no device code).
#pragma once

#include "backends/cuda/kernel_abi.h"
#include "mlxn/core/dtype.h"

namespace mlxn {
class KernelRegistry;
}

namespace mlxn::cuda {

enum class NormKind {
  RmsOffset,      // rms_norm_gemma, qk_norm: x, w, out
  L2,             // l2_norm: x, out
  AddRms,         // add_rms_norm: x, residual, w, h, y
  LayerNorm,      // layer_norm without bias: x, w, out
  LayerNormBias,  // layer_norm with bias: x, w, b, out
};

/// The kernel of `kind` for f32/f16/bf16 (ops::RowNormParams), nullptr for other dtypes.
ConfigureFn norm_configure(NormKind kind, DType dtype);

/// Adds the norm kernels' factories to `registry` (defined in pointwise_kernels.cpp).
void register_norms_kernels(KernelRegistry& registry);

}  // namespace mlxn::cuda
