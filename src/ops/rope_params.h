// Parameter struct of the RoPE kernel, shared by the CPU and CUDA kernels (plain data).
#pragma once

#include <cstdint>

namespace mlxn::ops {

/// Layouts of the rotated pairs within a head.
enum RopeLayoutCode : std::int32_t {
  kRopeInterleaved = 0,  // GPT-J: pairs (2i, 2i + 1)
  kRopeNeox = 1,         // GPT-NeoX / Llama: pairs (i, i + rotary_dim / 2)
};

/// rope: for token t, head h and pair i < rotary_dim / 2, with angle a = positions[t] *
/// inv_freq[i]:
///   out[u] = (x[u] cos a - x[v] sin a) * scale,  out[v] = (x[v] cos a + x[u] sin a) * scale
/// where (u, v) is the pair of `layout`; dims [rotary_dim, head_dim) are copied unchanged.
/// Bindings: x, positions (i32 [n_tokens]), inv_freq (f32 [rotary_dim / 2]), out. Spec: dtype.
/// x and out may be the same view (in place). Token strides are in elements (>= n_heads *
/// head_dim) so that a view of a fused QKV row can be rotated in place.
struct RopeParams {
  std::int64_t n_tokens;
  std::int64_t n_heads;
  std::int64_t head_dim;
  std::int64_t rotary_dim;
  std::int64_t x_token_stride;
  std::int64_t out_token_stride;
  float scale;          // attention scaling of YaRN / LongRoPE; 1 otherwise
  std::int32_t layout;  // RopeLayoutCode
};

}  // namespace mlxn::ops
