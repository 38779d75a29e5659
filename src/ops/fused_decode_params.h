// Parameter structs, device table and workspace layout of the fused decode step
// (mlxn/ops/fused_decode.h), shared by the op entry points and the CUDA kernels.
#pragma once

#include <cstdint>

namespace mlxn::ops {

/// fused_decode_scales. Bindings: scales, biases (bf16 [n, k / 64]), out (bf16 [n k / 32]).
struct FusedDecodeScalesParams {
  std::int64_t n;
  std::int64_t k;
};

/// A weight in the device table: device addresses of its DecodeTiles codes and unit scales.
struct FusedDecodeMatrixRef {
  std::uint64_t codes;
  std::uint64_t scales;
  std::int64_t n;
  std::int64_t k;
};

/// A layer in the device table.
struct FusedDecodeLayerRef {
  FusedDecodeMatrixRef qkv, o, gate_up, down;
  std::uint64_t attn_norm, ffn_norm;  // bf16 [hidden]
  std::uint64_t k_cache, v_cache;     // bf16 [n_kv_heads, capacity, head_dim]
};

/// The table: the head and the final norm, then n_layers FusedDecodeLayerRef.
struct FusedDecodeTableHead {
  FusedDecodeMatrixRef head;
  std::uint64_t final_norm;
  std::uint64_t pad;
};

/// fused_decode_step. Bindings: table (u8), x (bf16 [hidden], read and written), logits (bf16
/// [vocab]), workspace (u8, fused_decode_workspace(...).bytes), inv_freq (f32 [head_dim / 2]).
struct FusedDecodeParams {
  std::int64_t n_layers;
  std::int64_t hidden;
  std::int64_t n_heads;
  std::int64_t n_kv_heads;
  std::int64_t head_dim;
  std::int64_t intermediate;
  std::int64_t vocab;
  std::int64_t capacity;
  std::int64_t position;
  float eps;
  float attn_scale;
  float rope_scale;
};

// The workspace, in this order:
//  counters: u32 words, each alone in 64 bytes (polled by every block): exit, poisoned, then
//    one a product (4 a layer: qkv, o, gate_up, down), then attention arrivals (n_kv_heads a
//    layer), then merges done (one a layer). A launch leaves every counter at zero but
//    `poisoned`, which a launch that timed out sets and every later launch refuses.
//  partials: f32 [n_heads, max_chunks, head_dim + 2]: a chunk's max, sum and accumulator.
//  rows: bf16 qkv [(n_heads + 2 n_kv_heads) head_dim], attn [n_heads head_dim],
//    ffn [intermediate] (silu(g) u, which the gate/up product writes), each at a 256-byte
//    boundary.
/// ops::kFusedDecodeMaxBlocks, kFusedDecodeUnitCodes, kFusedDecodeMaxK, kFusedDecodeHeadDim and
/// kFusedDecodeMaxGroup, for the CUDA sources (which include no public header); static_asserts in
/// fused_decode.cpp and the kernels' headers keep the copies equal.
inline constexpr std::int64_t kFdMaxBlocks = 256;
inline constexpr std::int64_t kFdUnitCodes = 2048;
inline constexpr std::int64_t kFdMaxK = 16384;
inline constexpr std::int64_t kFdHeadDim = 128;
inline constexpr std::int64_t kFdMaxGroup = 4;
inline constexpr std::int64_t kFdCounterWords = 16;  // 64 bytes a counter
inline constexpr std::int64_t kFdCounterExit = 0;
inline constexpr std::int64_t kFdCounterPoisoned = 1;
inline constexpr std::int64_t kFdCounterProducts = 2;

struct FusedDecodeWorkspace {
  std::int64_t n_counters;
  std::int64_t arrive0, merged0;  // first counter of each kind
  std::int64_t max_chunks;
  std::int64_t partials;  // byte offsets
  std::int64_t qkv, attn, ffn;
  std::int64_t bytes;
};

constexpr std::int64_t fd_align256(std::int64_t b) {
  return (b + 255) / 256 * 256;
}

/// The workspace of a model with these dimensions, for up to `max_blocks` blocks a launch.
constexpr FusedDecodeWorkspace fused_decode_workspace(std::int64_t n_layers, std::int64_t n_heads,
                                                      std::int64_t n_kv_heads,
                                                      std::int64_t head_dim,
                                                      std::int64_t intermediate,
                                                      std::int64_t max_blocks) {
  FusedDecodeWorkspace w{};
  w.arrive0 = kFdCounterProducts + 4 * n_layers;
  w.merged0 = w.arrive0 + n_layers * n_kv_heads;
  w.n_counters = w.merged0 + n_layers;
  w.max_chunks = max_blocks / n_kv_heads;
  w.partials = fd_align256(w.n_counters * kFdCounterWords * 4);
  w.qkv = w.partials + fd_align256(n_heads * w.max_chunks * (head_dim + 2) * 4);
  w.attn = w.qkv + fd_align256((n_heads + 2 * n_kv_heads) * head_dim * 2);
  w.ffn = w.attn + fd_align256(n_heads * head_dim * 2);
  w.bytes = w.ffn + fd_align256(intermediate * 2);
  return w;
}

}  // namespace mlxn::ops
