// Parameter structs of the MoE routing ops, shared by the CPU and CUDA kernels (plain data).
#pragma once

#include <cstdint>

namespace mlxn::ops {

/// moe_route: per token, the k experts with the largest logits (ties by lower expert id; the
/// scores are monotone in the logits, so selecting on logits selects on scores), and their
/// weights: softmax over all experts (kScoringSoftmax) or sigmoid (kScoringSigmoid) of the
/// selected logits, divided by the sum over the selected when renormalize, times scale.
/// Bindings: logits [n_tokens, n_experts], ids (i32 [n_tokens, k]), weights (f32 [n_tokens, k]).
/// Spec: dtype.
struct MoeRouteParams {
  std::int64_t n_tokens;
  std::int32_t n_experts;
  std::int32_t k;
  std::int32_t scoring;      // kScoringSoftmax or kScoringSigmoid
  std::int32_t renormalize;  // 0 or 1
  float scale;
};
inline constexpr std::int32_t kScoringSoftmax = 0;
inline constexpr std::int32_t kScoringSigmoid = 1;
/// Limits of the routing kernels (one warp per token keeps all experts in shared memory).
inline constexpr std::int32_t kMaxExperts = 1024;
inline constexpr std::int32_t kMaxExpertsPerToken = 32;

/// moe_combine: out[t, :] = sum_j w[t, j] * e[t, j, :] (+ g(t) * shared[t, :], g = sigmoid(
/// gate[t]) when gated, else 1), accumulated in f32 and rounded once. Bindings: e
/// [n_tokens, k, hidden], w (f32 [n_tokens, k]), [shared [n_tokens, hidden], [gate
/// [n_tokens]]], out [n_tokens, hidden]. Spec: dtype, shared (0/1), gate (0/1).
struct MoeCombineParams {
  std::int64_t n_tokens;
  std::int64_t k;
  std::int64_t hidden;
};

}  // namespace mlxn::ops
