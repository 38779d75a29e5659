// Attention ops: prefill SDPA (over fresh K/V or over the KV cache) and single-token decode over
// the KV cache, with causal and sliding-window masks, GQA/MQA, logit softcap and custom scale.
#pragma once

#include <cstdint>

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"

namespace mlxn::ops {

/// Masking and logit options shared by every attention op. Positions: a key at position kp is
/// visible to a query at qp iff (!causal || kp <= qp) and (window == 0 || kp > qp - window).
struct AttentionOptions {
  /// Logit scale; 0 means 1/sqrt(head_dim) (Gemma passes query_pre_attn_scalar^-0.5).
  float scale = 0.0f;
  /// Attention-logit softcap c: s = c * tanh(s / c) before the softmax; 0 turns it off.
  float softcap = 0.0f;
  /// Sliding window in positions; 0 means none.
  std::int64_t window = 0;
  bool causal = true;
};

/// Decode-only knobs on top of AttentionOptions.
struct DecodeOptions : AttentionOptions {
  /// KV chunks the cache is split over (each yields a partial softmax merged by log-sum-exp);
  /// 0 lets the op choose (1 on the CPU).
  int n_chunks = 0;
  /// f32 scratch of at least attention_decode_workspace_elems(...) elements, used when
  /// n_chunks > 1; when absent the op allocates one per call.
  Buffer workspace;
};

/// Head dims the attention kernels are built for: 64, 80, 96, 128, 256.
bool attention_head_dim_supported(std::int64_t head_dim);

/// Prefill over freshly computed K/V. q, out: [n_q, n_heads, head_dim] (f32/f16/bf16, one dtype);
/// k, v: [n_kv, n_kv_heads, head_dim] (f32/f16/bf16, one dtype), n_q <= n_kv. Key j sits at
/// position j and query i at n_kv - n_q + i (the queries are the last n_q tokens of the keys).
void attention_prefill(CommandEncoder& encoder, const Buffer& q, const Buffer& k, const Buffer& v,
                       const Buffer& out, const AttentionOptions& options = {});

/// Prefill through the cache. q, out: [n_q, n_heads, head_dim]; k_cache, v_cache:
/// [n_kv_heads, capacity, head_dim] holding positions 0..kv_len-1 (see kv_cache.h; a ring once
/// kv_len > capacity); query i sits at q_pos0 + i with q_pos0 + n_q <= kv_len. Throws
/// InvalidArgument when a key some query needs was already overwritten in the ring.
void attention_prefill_cached(CommandEncoder& encoder, const Buffer& q, const Buffer& k_cache,
                              const Buffer& v_cache, std::int64_t kv_len, std::int64_t q_pos0,
                              const Buffer& out, const AttentionOptions& options = {});

/// Decode: one query token at position kv_len - 1 (the token just appended) over the cache.
/// q, out: [n_heads, head_dim] or [1, n_heads, head_dim]; k_cache, v_cache as above.
void attention_decode(CommandEncoder& encoder, const Buffer& q, const Buffer& k_cache,
                      const Buffer& v_cache, std::int64_t kv_len, const Buffer& out,
                      const DecodeOptions& options = {});

/// f32 elements of the decode workspace for n_chunks chunks.
std::int64_t attention_decode_workspace_elems(std::int64_t n_heads, std::int64_t head_dim,
                                              std::int64_t n_chunks);

}  // namespace mlxn::ops
