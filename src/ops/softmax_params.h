// Parameter struct of the softmax op, shared by the CPU and CUDA kernels (plain data).
#pragma once

#include <cstdint>

namespace mlxn::ops {

/// softmax: out[r, c] = exp(v[r, c] - max_c v[r, :]) / sum_c exp(v[r, c] - max), where
/// v[r, c] = x[r, c] * scale (+ mask[r % mask_rows, c] when masked). A row whose every v is
/// -inf (fully masked) yields zeros. Bindings: x, out (unmasked) or x, mask, out (masked).
/// Spec: src (x and mask dtype), dst (out dtype), masked (0/1). Accumulation in f32.
struct SoftmaxParams {
  std::int64_t rows;
  std::int64_t cols;
  std::int64_t mask_rows;  // rows of the mask, broadcast over x's rows; 0 when unmasked
  float scale;
};

}  // namespace mlxn::ops
