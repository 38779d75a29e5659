// The one shared decoder-block builder: encodes the token embedding, one decoder layer (attention
// through the KV cache, then a dense or routed-expert MLP) and the output head (final norm,
// lm_head, softcap) for every supported family, steered by BlockFeatures. It only encodes; the
// caller owns the command encoder and commits.
#pragma once

#include <cstdint>

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/core/device.h"
#include "mlxn/engine/block_features.h"
#include "mlxn/engine/kv_cache.h"
#include "mlxn/engine/model_weights.h"
#include "mlxn/io/model_config.h"
#include "mlxn/ops/norms.h"

namespace mlxn::engine {

/// Activation buffers for chunks of up to max_tokens tokens, allocated once and reused by every
/// chunk (chunk_buffers() takes views of the first rows).
struct ForwardScratch {
  std::int64_t max_tokens = 0;
  Buffer x, xn;                   // [max_tokens, hidden]: residual stream, normed input
  Buffer q, attn;                 // [max_tokens, n_heads * head_dim]
  Buffer k, v;                    // [max_tokens, n_kv_heads * head_dim]
  Buffer proj;                    // [max_tokens, hidden]: o_proj / MLP output
  Buffer gate, up;                // [max_tokens, intermediate] (when a layer is dense)
  Buffer qkv;                     // [1, (n_heads + 2 * n_kv_heads) * head_dim] (fused, decode)
  Buffer gate_up;                 // [1, 2 * intermediate] (fused, decode)
  Buffer router_logits;           // [max_tokens, n_experts] (MoE), f32
  Buffer router_in;               // [max_tokens, hidden] f32 copy of xn (MoE, non-f32 compute)
  Buffer expert_ids;              // i32 [max_tokens, top_k]
  Buffer expert_weights;          // f32 [max_tokens, top_k]
  Buffer expert_gate, expert_up;  // [max_tokens, top_k, moe_intermediate]
  Buffer expert_out;              // [max_tokens, top_k, hidden]
  Buffer decode_workspace;        // f32 split-KV decode scratch (CUDA only; empty on the CPU)
  // Compute dtype, the largest quantized layer weight (out * in): where Linear::apply decodes a
  // weight for the dense matmul of a prefill chunk. Empty unless the model sets it (CUDA,
  // quantized layer weights, chunks of kDequantGemmMinRows tokens or more).
  Buffer weight_workspace;

  /// Allocates the buffers of `config` in `dtype` for max_tokens tokens, and qkv / gate_up
  /// where some layer of `weights` has the fused projection.
  static ForwardScratch create(Device& device, const io::ModelConfig& config, DType dtype,
                               std::int64_t max_tokens, const ModelWeights& weights);
};

/// Views of a ForwardScratch for one chunk of n_tokens tokens, shaped as the ops take them.
struct ChunkBuffers {
  std::int64_t n_tokens = 0;
  Buffer x, xn;                   // [n, hidden]
  Buffer q, attn;                 // [n, n_heads, head_dim]
  Buffer k, v;                    // [n, n_kv_heads, head_dim]
  Buffer proj;                    // [n, hidden]
  Buffer gate, up;                // [n, intermediate]
  Buffer qkv, gate_up;            // ForwardScratch's one-row buffers (used when n == 1)
  Buffer router_logits;           // [n, n_experts], f32
  Buffer router_in;               // [n, hidden] f32, or empty when the compute dtype is f32
  Buffer expert_ids;              // i32 [n, top_k]
  Buffer expert_weights;          // f32 [n, top_k]
  Buffer expert_gate, expert_up;  // [n, top_k, moe_intermediate]
  Buffer expert_out;              // [n, top_k, hidden]
  Buffer decode_workspace;
  Buffer weight_workspace;  // ForwardScratch::weight_workspace, whole
};

/// The first n_tokens rows of `scratch` (1 <= n_tokens <= scratch.max_tokens).
ChunkBuffers chunk_buffers(const ForwardScratch& scratch, const io::ModelConfig& config,
                           std::int64_t n_tokens);

/// RoPE frequency tables on the device: f32 [rotary_dim / 2] each, with their cos/sin scale.
struct RopeBuffers {
  Buffer global_inv_freq;  // Full layers
  float global_scale = 1.0f;
  Buffer local_inv_freq;  // Sliding layers
  float local_scale = 1.0f;
};

/// What stays fixed across layers and calls.
struct BlockContext {
  const io::ModelConfig& config;
  const BlockFeatures& features;
  ops::NormWeight norm_weight = ops::NormWeight::Plain;
};

/// Where a chunk sits in the sequence: its first absolute position and the positions of all its
/// tokens (i32 [n_tokens], pos0, pos0 + 1, ...).
struct ChunkPositions {
  std::int64_t pos0 = 0;
  Buffer positions;
};

/// x = embedding(ids) * features.embedding_scale. ids: i32 [n]; x: [n, hidden].
void encode_embedding(CommandEncoder& encoder, const BlockContext& ctx,
                      const EmbeddingWeights& embedding, const Buffer& ids, const Buffer& x);

/// RMSNorm with the model's weight convention. x, out: [rows, hidden]; out must not alias x.
void encode_norm(CommandEncoder& encoder, const BlockContext& ctx, const Buffer& x,
                 const Buffer& weight, const Buffer& out);

/// How a layer meets its neighbours: a layer's closing residual add and the next layer's input
/// norm read and write the same rows, so one add_rms_norm dispatch does both (a launch and a
/// round trip of x fewer a layer, which batch-1 decode feels).
struct LayerLinks {
  /// buf.xn already holds this layer's input norm of buf.x (the previous layer wrote it).
  bool input_normed = false;
  /// When set: the closing residual add also writes buf.xn = RMSNorm(x) with this weight (the
  /// next layer's input norm).
  const Buffer* next_norm = nullptr;
};

/// One decoder layer on buf.x in place: appends the chunk's K/V at its positions to `cache` and
/// attends over positions [0, pos0 + n) (a decode kernel when n == 1). A single token (n == 1)
/// goes through the fused q/k/v and gate/up projections where the layer has them.
void encode_layer(CommandEncoder& encoder, const BlockContext& ctx, std::int64_t layer,
                  const LayerWeights& weights, const LayerCache& cache, const RopeBuffers& rope,
                  const ChunkPositions& where, const ChunkBuffers& buf,
                  const LayerLinks& links = {});

/// Output head: logits = lm_head(final_norm(x)), softcapped when the features say so.
/// x, xn: [rows, hidden] (xn is scratch); logits: [rows, vocab] in the compute dtype.
void encode_logits(CommandEncoder& encoder, const BlockContext& ctx, const ModelWeights& weights,
                   const Buffer& x, const Buffer& xn, const Buffer& logits);

}  // namespace mlxn::engine
