// Parameter struct of the dense expert-routed matmul (ops::matmul_id), shared by the CPU and CUDA
// kernels (plain data, no host types).
#pragma once

#include <cstdint>

namespace mlxn::ops {

/// matmul_id: out[a, j] = sum_k x_a[k] * w[ids[a], j, k], a = token * top_k + slot,
///   x_a = x + token * x_token_stride + slot * x_slot_stride.
/// Bindings: x, w ([n_experts, n, k]), out ([m * top_k, n]), ids (i32 [m, top_k]).
/// Spec: dtype (x, w and out share it). An id outside [0, n_experts) fails the command buffer
/// (kStatusExpertIdOutOfRange on CUDA, info = a).
struct MatmulIdParams {
  std::int64_t m;               // tokens
  std::int64_t n;               // output features (weight rows per expert)
  std::int64_t k;               // input features
  std::int64_t top_k;           // experts per token
  std::int64_t n_experts;       // stacked experts in w
  std::int64_t x_token_stride;  // elements between tokens' x rows
  std::int64_t x_slot_stride;   // elements between slots' x rows (0: the slots share x)
};

}  // namespace mlxn::ops
