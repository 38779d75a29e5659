// Host-side entry points of the CUDA kernels: one function per op family returning its ConfigureFn.
// Plain C++ (no device code), so the registration in cuda_kernels.cpp can call into the .cu files.
#pragma once

#include "backends/cuda/kernel_abi.h"
#include "mlxn/core/dtype.h"

namespace mlxn::cuda {

enum class BinaryOp { Add, Mul };

// Each returns nullptr when the dtype (combination) is not one we instantiate.

/// add / mul over f32, f16, bf16 (ops::BinaryParams; bindings a, b, out).
ConfigureFn binary_configure(BinaryOp op, DType dtype);
/// cast between any two of f32, f16, bf16 (ops::CastParams; bindings in, out).
ConfigureFn cast_configure(DType src, DType dst);
/// rms_norm (bindings x, w, out) or, with `gated`, rms_norm_mul (bindings x, w, g, out).
ConfigureFn rms_norm_configure(DType dtype, bool gated);
/// assert_finite (ops::AssertFiniteParams; binding x).
ConfigureFn assert_finite_configure(DType dtype);
/// bias_add: out[r, :] = x[r, :] + bias (ops::BiasAddParams; bindings x, bias, out).
ConfigureFn bias_add_rows_configure(DType dtype);
/// apply_penalties (ops::PenaltiesParams; bindings logits, pairs).
ConfigureFn penalties_configure(DType dtype);

}  // namespace mlxn::cuda
