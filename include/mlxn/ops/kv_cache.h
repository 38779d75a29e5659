// KV cache op: writes new K/V rows into per-layer cache buffers at explicit positions, with a ring
// mode for sliding-window layers.
//
// Layout: each cache buffer is head-major, [n_kv_heads, capacity, head_dim]. Decode attention
// reads, for one KV head, every cached row of that head: head-major makes those rows one
// contiguous run of memory (capacity * head_dim elements), so the read is a plain stream at full
// bandwidth and the rows of a chunk are adjacent. The token-major alternative
// [capacity, n_kv_heads, head_dim] would interleave heads and stride every row read.
//
// Ring mode (sliding-window layers): slot = position % capacity. capacity = window suffices for
// decode (one token per step) and for a prefill that attends to its fresh K/V before appending;
// a chunked prefill that attends through the cache needs capacity >= window + chunk - 1 so that
// the chunk does not overwrite keys its own first queries still see (the attention ops check this).
#pragma once

#include <cstdint>

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"

namespace mlxn::ops {

/// Writes token t's rows of k_new/v_new into the caches at the slot of positions[t], converting
/// to the cache dtype (round to nearest even). k_new, v_new: [n_tokens, n_kv_heads, head_dim]
/// (f32/f16/bf16, one dtype); positions: i32 [n_tokens], distinct; k_cache, v_cache:
/// [n_kv_heads, capacity, head_dim] (f32/f16/bf16, one dtype). Without `ring` a position must be
/// in [0, capacity); with `ring` any position >= 0 goes to slot position % capacity, and of several
/// tokens landing on one slot the greatest position wins. A bad position fails the command buffer.
void kv_cache_append(CommandEncoder& encoder, const Buffer& k_new, const Buffer& v_new,
                     const Buffer& positions, const Buffer& k_cache, const Buffer& v_cache,
                     bool ring = false);

}  // namespace mlxn::ops
