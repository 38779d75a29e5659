// Parameter struct of the KV-cache append op, shared by the CPU and CUDA kernels (plain data).
#pragma once

#include "ops/op_params.h"

#include <cstdint>

namespace mlxn::ops {

/// kv_cache_append: copies token t's K/V rows into the caches at slot(positions[t]).
/// Bindings: k_new, v_new [n_tokens, n_kv_heads, head_dim] (src dtype), positions i32 [n_tokens],
/// k_cache, v_cache [n_kv_heads, capacity, head_dim] (dst dtype). Spec: src, dst.
/// slot(p) = p (p < capacity required) or, with ring, p % capacity; when several tokens of one call
/// land on the same ring slot, the one with the greatest position is written (the others would be
/// overwritten anyway), so the result does not depend on the order the kernel runs tokens in.
/// A negative position, or p >= capacity without ring, fails the command buffer
/// (CPU: Error CommandBuffer; CUDA: kStatusKvPositionOutOfRange with the token index).
struct KvCacheAppendParams {
  std::int64_t n_tokens;
  std::int64_t n_kv_heads;
  std::int64_t head_dim;
  std::int64_t capacity;
  std::int32_t ring;
};

/// Status code the CUDA append kernel reports for a position outside the cache. Chosen far from
/// ops::StatusCode's values so the two enums cannot collide.

}  // namespace mlxn::ops
