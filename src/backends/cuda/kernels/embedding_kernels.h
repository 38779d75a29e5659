// Host-side entry points of the CUDA embedding kernels (plain C++, no device code).
#pragma once

#include "backends/cuda/kernel_abi.h"
#include "mlxn/core/dtype.h"

namespace mlxn {
class KernelRegistry;
}

namespace mlxn::cuda {

/// Dense lookup for f32/f16/bf16 tables (ops::EmbeddingParams; table, ids, out).
ConfigureFn embedding_configure(DType dtype);
/// Quantized lookup writing `dtype` from scales/biases of `scale_dtype`, both f32/f16/bf16
/// (ops::EmbeddingQuantizedParams; packed, scales, biases, ids, out).
ConfigureFn embedding_quantized_configure(DType dtype, DType scale_dtype);

/// Adds the embedding kernels' factories to `registry` (defined in pointwise_kernels.cpp).
void register_embedding_kernels(KernelRegistry& registry);

}  // namespace mlxn::cuda
