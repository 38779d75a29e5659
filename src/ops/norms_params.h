// Parameter structs of the norm ops in norms.h, shared by the CPU and CUDA kernels (plain data).
#pragma once

#include <cstdint>

namespace mlxn::ops {

/// One normalization per row of x: [rows, cols]. Accumulation in f32 (CPU: f64).
///   rms_norm_gemma, qk_norm:  out = x / sqrt(mean(x^2) + eps) * (w + weight_offset).
///     Bindings: x, w, out. weight_offset is 1 for Gemma's (1 + w), else 0.
///   add_rms_norm: h = x + residual (rounded to the dtype), y = rms_norm(h) * (w + weight_offset).
///     Bindings: x, residual, w, h, y.
///   l2_norm: out = x / sqrt(sum(x^2) + eps). Bindings: x, out.
///   layer_norm: out = (x - mean) / sqrt(var + eps) * w (+ b). Bindings: x, w, [b,] out;
///     spec "bias" is 1 when b is bound.
/// Spec: dtype (all tensors share it).
struct RowNormParams {
  std::int64_t rows;
  std::int64_t cols;
  float eps;
  float weight_offset;
};

}  // namespace mlxn::ops
