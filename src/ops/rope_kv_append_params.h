// Parameter struct of the fused rope + KV-cache append op, shared by the CPU and CUDA kernels.
#pragma once

#include <cstdint>

#include "ops/kv_cache_params.h"
#include "ops/rope_params.h"

namespace mlxn::ops {

/// rope_kv_append: for each token t, RopeParams' rotation (angle positions[t] * inv_freq[i],
/// times scale, pairs by `layout`) of every q and k head in place, then KvCacheAppendParams'
/// append of the rotated k row and the v row at slot(positions[t]) (greatest position of a ring
/// slot wins; a bad position fails the command buffer, on CUDA with kStatusKvPositionOutOfRange).
/// Bindings: q [n_tokens, n_heads, head_dim], k, v [n_tokens, n_kv_heads, head_dim] (src dtype;
/// q and k read and written), positions i32 [n_tokens], inv_freq f32 [rotary_dim / 2], k_cache,
/// v_cache [n_kv_heads, capacity, head_dim] (dst dtype). Spec: src, dst.
struct RopeKvAppendParams {
  std::int64_t n_tokens;
  std::int64_t n_heads;  // of q
  std::int64_t n_kv_heads;
  std::int64_t head_dim;
  std::int64_t rotary_dim;
  std::int64_t capacity;
  float scale;          // attention scaling of YaRN / LongRoPE; 1 otherwise
  std::int32_t layout;  // RopeLayoutCode
  std::int32_t ring;
};

}  // namespace mlxn::ops
