// Mixture-of-experts routing: choose each token's experts and weights, and combine the expert
// outputs back into one hidden state per token.
#pragma once

#include <cstdint>

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"

namespace mlxn::ops {

/// How router logits become expert weights.
enum class MoeScoring {
  Softmax,  // softmax over all experts (Mixtral, Qwen-MoE, OLMoE)
  Sigmoid,  // independent sigmoid per expert (DeepSeek-V3, Llama-4 style)
};

/// Per token the k experts with the largest logits (ties by lower id) and their weights: the
/// scores (softmax over all experts, or sigmoid) of the chosen experts, divided by their sum when
/// `renormalize` (norm_topk_prob), times `scale` (routed_scaling_factor).
/// logits: [n_tokens, n_experts] (f32, f16, bf16; n_experts <= 1024); ids: i32 [n_tokens, k];
/// weights: f32 [n_tokens, k]; 1 <= k <= min(n_experts, 32).
void moe_route(CommandEncoder& encoder, const Buffer& logits, std::int64_t k, MoeScoring scoring,
               bool renormalize, const Buffer& ids, const Buffer& weights, float scale = 1.0f);

/// out[t, :] = sum_j weights[t, j] * expert_out[t, j, :], in f32, rounded once.
/// expert_out: [n_tokens, k, hidden] (f32, f16, bf16); weights: f32 [n_tokens, k];
/// out: [n_tokens, hidden] in expert_out's dtype.
void moe_combine(CommandEncoder& encoder, const Buffer& expert_out, const Buffer& weights,
                 const Buffer& out);

/// The same plus a shared expert: + g[t] * shared[t, :], with g[t] = sigmoid(shared_gate[t])
/// when shared_gate is valid (Qwen-MoE's shared_expert_gate) and 1 otherwise.
/// shared: [n_tokens, hidden]; shared_gate: [n_tokens] (or [n_tokens, 1]) or an invalid Buffer;
/// both in expert_out's dtype.
void moe_combine_shared(CommandEncoder& encoder, const Buffer& expert_out, const Buffer& weights,
                        const Buffer& shared, const Buffer& shared_gate, const Buffer& out);

}  // namespace mlxn::ops
