// The decode step's rope + KV-cache append as one dispatch: at batch-1 decode rope(q), rope(k) and
// kv_cache_append are each a tiny latency-bound kernel, so fusing them saves two launches a layer.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/ops/rope.h"

namespace mlxn::ops {

/// rope(q) in place, rope(k) in place, then k (rotated) and v appended to the caches at positions:
/// exactly ops::rope(q); ops::rope(k); ops::kv_cache_append(k, v, ...) in one dispatch, with the
/// same results bit for bit on each backend.
/// q: [n_tokens, n_heads, head_dim]; k, v: [n_tokens, n_kv_heads, head_dim]; q, k, v of one
/// f32/f16/bf16 dtype and not overlapping (they may be views into one fused QKV buffer);
/// positions: i32 [n_tokens], distinct; inv_freq: f32 [rotary_dim / 2] (rotary_dim <= head_dim);
/// k_cache, v_cache: [n_kv_heads, capacity, head_dim] (f32/f16/bf16, one dtype, not overlapping
/// each other or q, k, v). Positions and ring as in kv_cache_append: a bad position fails the
/// command buffer.
void rope_kv_append(CommandEncoder& encoder, const Buffer& q, const Buffer& k, const Buffer& v,
                    const Buffer& positions, const Buffer& inv_freq, RopeLayout layout,
                    float attention_scale, const Buffer& k_cache, const Buffer& v_cache,
                    bool ring = false);

}  // namespace mlxn::ops
