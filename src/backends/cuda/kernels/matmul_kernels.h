// Host-side entry points of the matmul family's CUDA kernels (plain C++, no device code), for
// the registration in matmul_registry.cpp and the cuBLASLt host code.
#pragma once

#include <string>

#include "backends/cuda/kernel_abi.h"
#include "mlxn/core/dtype.h"

namespace mlxn {
class KernelRegistry;
}

namespace mlxn::cuda {

// Each returns nullptr when the combination is not one we instantiate.

/// matvec: y = x @ w^T (+ bias) streaming w once (ops::MatmulParams; x, w, out[, bias]).
ConfigureFn dense_matvec_configure(DType dtype);
/// out[i, j] += bias[j] over [m, n] (ops::MatmulParams; bindings out, bias): the bias of a GEMM
/// whose bias pointer cuBLASLt's epilogue cannot take.
ConfigureFn bias_add_configure(DType dtype);
/// matmul: the cuBLASLt GEMM, a host-enqueued dispatch (see host_launch.h).
ConfigureFn dense_matmul_configure(DType dtype);
/// matmul_id: dense expert-routed matvec, one block per (assignment, row tile), streaming only
/// the chosen experts (ops::MatmulIdParams; x, w, out, ids).
ConfigureFn dense_matmul_id_configure(DType dtype);

/// MLX affine quantized matvec / tiled matmul for `bits` (ops::QuantMatmulParams).
ConfigureFn mlx_quant_matvec_configure(DType dtype, int bits);
ConfigureFn mlx_quant_tiled_configure(DType dtype, int bits);
/// MLX affine weight decoded to a dense [n, k] matrix (ops::dequantize).
ConfigureFn mlx_quant_dequant_configure(DType dtype, int bits);
/// 4-bit MLX codes from row order to DecodeTiles (ops::tile_for_decode; bindings out, packed).
ConfigureFn mlx_tile_decode_configure();
/// GGML quantized matvec / tiled matmul for the type named `type` ("q4_0", "q8_0", "q4_k",
/// "q5_k", "q6_k").
ConfigureFn ggml_quant_matvec_configure(DType dtype, const std::string& type);
ConfigureFn ggml_quant_tiled_configure(DType dtype, const std::string& type);
/// GGML blocks decoded to a dense [n, k] matrix (ops::ggml_dequantize).
ConfigureFn ggml_quant_dequant_configure(DType dtype, const std::string& type);

/// Registers the family's kernel names with a CUDA registry.
void register_matmul_kernels(KernelRegistry& registry);

}  // namespace mlxn::cuda
