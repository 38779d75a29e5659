// CPU kernels of the matmul family (dense, MLX affine quantized, GGML quantized).
#pragma once

#include "backends/cpu/cpu_kernel.h"
#include "mlxn/core/dtype.h"

namespace mlxn {
class KernelRegistry;
}

namespace mlxn::cpu {

/// matvec / matmul (ops::MatmulParams; bindings x, w, out[, bias]).
KernelFn matmul_kernel(DType dtype);
/// quantized_matvec / quantized_matmul (ops::QuantMatmulParams; x, w, scales, biases, out[, ids]).
KernelFn quantized_matmul_kernel(DType dtype);
/// ggml_matvec / ggml_matmul (ops::QuantMatmulParams; x, w, out[, ids]).
KernelFn ggml_matmul_kernel(DType dtype);
/// matmul_id: dense expert-routed matmul (ops::MatmulIdParams; x, w, out, ids).
KernelFn matmul_id_kernel(DType dtype);

/// Registers every kernel name of the family (one CPU kernel serves both the matvec and the
/// matmul name of each op: the split only matters on CUDA).
void register_matmul_kernels(KernelRegistry& registry);

}  // namespace mlxn::cpu
