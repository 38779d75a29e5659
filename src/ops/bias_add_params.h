// Parameter struct of ops::bias_add, shared by the CPU and CUDA kernels (plain data).
#pragma once

#include <cstdint>

namespace mlxn::ops {

/// bias_add: out[r, j] = x[r, j] + bias[j] for r < rows, j < n, computed in f32 and rounded once.
/// Bindings: x, bias, out (out may alias x). Spec: dtype.
struct BiasAddParams {
  std::int64_t rows;
  std::int64_t n;
};

}  // namespace mlxn::ops
