// The CPU reference's KV-cache write, shared by kv_cache_append and rope_kv_append: which token
// owns each cache slot, and the conversion of a token's K/V rows into the head-major cache.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "backends/cpu/kernels/kernels.h"
#include "mlxn/core/error.h"

namespace mlxn::cpu {

/// The cache slot of position `pos` (position % capacity in a ring).
inline std::int64_t cache_slot(std::int32_t pos, std::int64_t capacity, bool ring) {
  return ring ? pos % capacity : pos;
}

/// Validates every position before anything is written (a bad one fails the command buffer,
/// naming `op`) and maps each slot to its winner: the token with the greatest position
/// (positions are distinct, so there is one).
inline std::unordered_map<std::int64_t, std::int64_t> slot_winners(const char* op,
                                                                   const std::int32_t* pos,
                                                                   std::int64_t n_tokens,
                                                                   std::int64_t capacity,
                                                                   bool ring) {
  std::unordered_map<std::int64_t, std::int64_t> winner;  // slot -> token
  for (std::int64_t t = 0; t < n_tokens; ++t) {
    if (pos[t] < 0 || (!ring && pos[t] >= capacity)) {
      throw Error(ErrorKind::CommandBuffer,
                  std::string(op) + ": token " + std::to_string(t) + " has position " +
                      std::to_string(pos[t]) + " outside the cache (capacity " +
                      std::to_string(capacity) + (ring ? ", ring)" : ")"));
    }
    auto [it, fresh] = winner.try_emplace(cache_slot(pos[t], capacity, ring), t);
    if (!fresh && pos[t] > pos[it->second]) it->second = t;
  }
  return winner;
}

/// Token t's rows of k and v ([n_tokens, n_kv_heads, head_dim]) into the caches
/// ([n_kv_heads, capacity, head_dim]) at `slot`, converted to the cache dtype.
template <class Tsrc, class Tdst>
void write_cache_rows(const Tsrc* k, const Tsrc* v, std::int64_t t, std::int64_t slot,
                      std::int64_t n_kv_heads, std::int64_t head_dim, std::int64_t capacity,
                      Tdst* k_cache, Tdst* v_cache) {
  for (std::int64_t h = 0; h < n_kv_heads; ++h) {
    const std::int64_t src = (t * n_kv_heads + h) * head_dim;
    const std::int64_t dst = (h * capacity + slot) * head_dim;
    for (std::int64_t d = 0; d < head_dim; ++d) {
      k_cache[dst + d] = from_f32<Tdst>(to_f32(k[src + d]));
      v_cache[dst + d] = from_f32<Tdst>(to_f32(v[src + d]));
    }
  }
}

}  // namespace mlxn::cpu
